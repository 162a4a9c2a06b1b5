/* vidplug report page: synchronised videos, wipe, zoom, charts, tables. Written for vidplug, no dependencies.
   The page data (see vidplug/report_html/page.py) is the JSON in #vp-data. Frames are 0-based. */
(function () {
  'use strict';
  const D = JSON.parse(document.getElementById('vp-data').textContent);
  const app = document.getElementById('app');
  const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#be185d', '#65a30d',
                  '#78716c', '#0f766e'];

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid != null) e.append(kid);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));
  const colorMap = new Map();  // one colour per series label on every chart of the page
  const colorOf = (label) => {
    if (!colorMap.has(label)) colorMap.set(label, COLORS[colorMap.size % COLORS.length]);
    return colorMap.get(label);
  };

  // ---------------------------------------------------------------- header, links, warnings
  app.append(el('h1', { text: D.title }));
  if (D.subtitle) app.append(el('div', { class: 'subtitle', text: D.subtitle }));
  if (D.links.length) {
    app.append(el('div', { class: 'links' }, ...D.links.map(([t, h]) => el('a', { href: h, text: t }))));
  }
  const warn = el('section', { class: D.warnings.length ? 'warnings' : '', id: 'warnings' });
  if (D.warnings.length) {
    warn.append(el('h2', { text: `Warnings (${D.warnings.length})` }),
                el('ul', {}, ...D.warnings.map((w) => el('li', { text: w }))));
  } else {
    warn.append(el('div', { class: 'ok', text: 'No warnings were recorded for this run.' }));
  }
  app.append(warn);
  const tablesBox = el('div', { id: 'tables' });  // filled below; the numbers come first
  app.append(tablesBox);

  // ---------------------------------------------------------------- player
  const player = { vids: [], frame: 0, playing: false, listeners: [] };
  if (D.videos.length && D.frames > 0) buildPlayer();

  // Over HTTP the videos are fetched whole and played from memory: a server without range requests (python -m
  // http.server) otherwise leaves them unseekable in Chromium (measured). file:// pages seek as they are.
  function loadSource(video, src) {
    if (!/^https?:$/.test(location.protocol)) { video.src = src; return; }
    fetch(src)
      .then((r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); return r.blob(); })
      .then((b) => { video.src = URL.createObjectURL(b); })
      .catch(() => { video.src = src; });  // let the video element report the problem itself
  }

  function buildPlayer() {
    const fps = D.fps, T = D.frames;
    const tOf = (i) => (i + 0.5) / fps;  // the middle of frame i: robust to rounding of timestamps
    const frameOf = (t) => clamp(Math.floor(t * fps + 1e-3), 0, T - 1);
    const sec = el('section', { id: 'player' }, el('h2', { text: 'Videos' }));
    const grid = el('div', { class: 'grid' });
    const sels = [];
    D.videos.forEach((v, i) => {
      const video = el('video', { preload: 'auto', 'data-label': v.label });
      loadSource(video, v.src);
      video.muted = true; video.playsInline = true; video.loop = false;
      const sel = el('div', { class: 'sel' });
      const stage = el('div', { class: 'stage' }, video, sel);
      grid.append(el('figure', { class: 'panel' }, el('figcaption', { text: v.label, title: v.label }), stage));
      player.vids.push(video); sels.push(sel);
      video.addEventListener('loadedmetadata', () => {
        // small videos are shown enlarged by an integer factor (pixelated), large ones at most 480 px wide
        const k = video.videoWidth < 240 ? Math.floor(240 / video.videoWidth) + 1 : 1;
        const cssW = Math.min(video.videoWidth * k, 480);
        video.style.width = cssW + 'px';
        video.style.height = cssW * video.videoHeight / video.videoWidth + 'px';
        if (i === 0) initWipe(video);
      });
      video.addEventListener('seeked', () => redraw());
      video.addEventListener('loadeddata', () => redraw());
      attachZoomDrag(stage, video);
    });
    sec.append(grid);

    const playBtn = el('button', { id: 'play', text: '▶ play', title: 'space' });
    const slider = el('input', { id: 'seek', type: 'range', min: 0, max: T - 1, step: 1, value: 0 });
    const counter = el('span', { class: 'counter', id: 'counter' });
    const speed = el('select', { id: 'speed', title: 'playback speed' },
                     ...[0.1, 0.25, 0.5, 1, 2].map((r) => el('option', { value: r, text: r + 'x' })));
    speed.value = '1';
    const loop = el('input', { type: 'checkbox', id: 'loop' }); loop.checked = true;
    sec.append(el('div', { class: 'controls' },
      playBtn,
      el('button', { id: 'prev', text: '◀ frame', title: 'left arrow', onclick: () => step(-1) }),
      el('button', { id: 'next', text: 'frame ▶', title: 'right arrow', onclick: () => step(1) }),
      slider, counter, el('label', {}, 'speed ', speed), el('label', {}, loop, ' loop')));
    sec.append(el('div', { class: 'hint', text: 'space: play/pause · ←/→: one frame (shift: 10) · drag on a ' +
      'video to zoom into a region in every panel' }));
    const zoomRow = el('div', { class: 'zoomrow', id: 'zoom' });
    sec.append(el('h2', { text: 'Zoom', style: 'margin-top:12px' }), zoomRow);
    app.append(sec);

    playBtn.addEventListener('click', () => (player.playing ? pause() : play()));
    slider.addEventListener('input', () => seek(+slider.value));
    speed.addEventListener('change', () => player.vids.forEach((v) => { v.playbackRate = +speed.value; }));
    // a clicked button keeps the focus, and space would then "click" it again after our handler: drop the focus
    document.addEventListener('click', (e) => { if (e.target.tagName === 'BUTTON') e.target.blur(); });
    document.addEventListener('keydown', (e) => {
      if (e.target.tagName === 'SELECT' || (e.target.tagName === 'INPUT' && e.target.type !== 'range')) return;
      if (e.key === ' ') { e.preventDefault(); player.playing ? pause() : play(); }
      else if (e.key === 'ArrowRight') { e.preventDefault(); step(e.shiftKey ? 10 : 1); }
      else if (e.key === 'ArrowLeft') { e.preventDefault(); step(e.shiftKey ? -10 : -1); }
      else if (e.key === 'Home') seek(0);
      else if (e.key === 'End') seek(T - 1);
    });

    function show(i) {
      player.frame = i;
      slider.value = i;
      counter.textContent = `frame ${i} / ${T - 1}  (${(i / fps).toFixed(2)} s)`;
      player.listeners.forEach((f) => f(i));
    }
    function seek(i) {
      i = clamp(Math.round(i), 0, T - 1);
      if (player.playing) pause(false);
      player.vids.forEach((v) => { v.currentTime = tOf(i); });
      show(i);
    }
    function step(d) { seek((player.playing ? frameOf(player.vids[0].currentTime) : player.frame) + d); }
    function play() {
      if (player.frame >= T - 1) player.vids.forEach((v) => { v.currentTime = tOf(0); });
      player.playing = true; playBtn.textContent = '❚❚ pause';
      player.vids.forEach((v) => { v.playbackRate = +speed.value; v.play().catch(() => {}); });
      requestAnimationFrame(tick);
    }
    function pause(snap = true) {
      player.playing = false; playBtn.textContent = '▶ play';
      player.vids.forEach((v) => v.pause());
      if (snap) seek(frameOf(player.vids[0].currentTime));
    }
    function tick() {
      if (!player.playing) return;
      const lead = player.vids[0];
      const t = lead.currentTime;
      // followers drift by decoder timing: pull any that is more than half a frame off back to the lead
      for (const v of player.vids.slice(1)) if (Math.abs(v.currentTime - t) > 0.5 / fps) v.currentTime = t;
      show(frameOf(t));
      redraw();
      if (lead.ended || t >= T / fps - 1e-3) {
        if (loop.checked) {
          player.vids.forEach((v) => { v.currentTime = 0; v.play().catch(() => {}); });
        } else { pause(); return; }
      }
      requestAnimationFrame(tick);
    }
    player.seek = seek; player.play = play; player.pause = pause;
    player.tOf = tOf; player.frameOf = frameOf;
    show(0);

    // ------------------------------------------------------------ zoom: one region magnified in every panel
    player.zoom = null;  // {x, y, w, h} in video pixels; k = integer magnification
    function attachZoomDrag(stage, video) {
      let start = null;
      const toPx = (e) => {
        const r = video.getBoundingClientRect();
        return [clamp((e.clientX - r.left) / r.width * video.videoWidth, 0, video.videoWidth),
                clamp((e.clientY - r.top) / r.height * video.videoHeight, 0, video.videoHeight)];
      };
      stage.addEventListener('mousedown', (e) => { e.preventDefault(); start = toPx(e); });
      window.addEventListener('mouseup', (e) => {
        if (!start) return;
        const end = toPx(e);
        const x = Math.floor(Math.min(start[0], end[0])), y = Math.floor(Math.min(start[1], end[1]));
        const w = Math.ceil(Math.max(start[0], end[0])) - x, h = Math.ceil(Math.max(start[1], end[1])) - y;
        start = null;
        if (w >= 2 && h >= 2) setZoom({ x, y, w, h });
      });
    }
    function setZoom(z) {
      const k = Math.max(1, Math.floor(Math.min(240 / z.w, 240 / z.h)));
      player.zoom = { ...z, k };
      zoomRow.replaceChildren(...player.vids.map((v, i) => {
        const c = el('canvas', { width: z.w * k, height: z.h * k, 'data-label': D.videos[i].label });
        c.style.width = z.w * k + 'px';  // CSS size = canvas size: the browser must not rescale it
        return el('figure', { class: 'panel' }, el('figcaption', { text: D.videos[i].label }), c);
      }));
      const W = player.vids[0].videoWidth || 1, H = player.vids[0].videoHeight || 1;  // all videos share a size
      sels.forEach((s) => Object.assign(s.style, { display: 'block', left: 100 * z.x / W + '%',
        top: 100 * z.y / H + '%', width: 100 * z.w / W + '%', height: 100 * z.h / H + '%' }));
      redraw();
    }
    player.setZoom = setZoom;
    function drawZoom() {
      const z = player.zoom;
      if (!z) return;
      zoomRow.querySelectorAll('canvas').forEach((c, i) => {
        const v = player.vids[i];
        if (v.readyState < 2) return;
        const ctx = c.getContext('2d');
        ctx.imageSmoothingEnabled = false;  // nearest neighbour: one video pixel = one k x k block
        ctx.drawImage(v, z.x, z.y, z.w, z.h, 0, 0, z.w * z.k, z.h * z.k);
      });
    }

    // ------------------------------------------------------------ wipe: two methods split by a slider
    const wipeSec = el('section', { id: 'wipe' }, el('h2', { text: 'Wipe comparison' }));
    const opts = () => D.videos.map((v, i) => el('option', { value: i, text: v.label }));
    const selA = el('select', { id: 'wipe-a' }, ...opts()), selB = el('select', { id: 'wipe-b' }, ...opts());
    const labels = D.videos.map((v) => v.label);
    const gt = labels.indexOf('ground truth');
    // default: the last method (the one a comparison page ends on) against the ground truth, else the observation
    const last = gt > 0 ? gt - 1 : D.videos.length - 1;
    selA.value = String(last);
    selB.value = String(gt >= 0 && gt !== last ? gt : 0);
    const wipeRange = el('input', { id: 'wipe-split', type: 'range', min: 0, max: 1000, value: 500 });
    const canvas = el('canvas', { id: 'wipe-canvas', width: 2, height: 2 });
    const line = el('div', { class: 'wipe-line' });
    const tagA = el('span', { class: 'wipe-tag', style: 'left:4px' });
    const tagB = el('span', { class: 'wipe-tag', style: 'right:4px' });
    const stage = el('div', { class: 'wipe-stage' }, canvas, line, tagA, tagB);
    wipeSec.append(el('div', { class: 'controls' }, el('label', {}, 'left ', selA), el('label', {}, 'right ', selB),
                       wipeRange), stage,
                   el('div', { class: 'hint', text: 'drag on the picture or the slider to move the split' }));
    app.append(wipeSec);
    function initWipe(video) {
      canvas.width = video.videoWidth; canvas.height = video.videoHeight;
      const k = video.videoWidth < 320 ? Math.floor(320 / video.videoWidth) + 1 : 1;
      const cssW = Math.min(video.videoWidth * k, 720);
      canvas.style.width = cssW + 'px';
      canvas.style.height = cssW * video.videoHeight / video.videoWidth + 'px';
      if (!player.zoom) {  // a default zoom region: the centre quarter
        const w = Math.max(2, Math.round(video.videoWidth / 4)), h = Math.max(2, Math.round(video.videoHeight / 4));
        setZoom({ x: Math.round((video.videoWidth - w) / 2), y: Math.round((video.videoHeight - h) / 2), w, h });
      }
      redraw();
    }
    function drawWipe() {
      const a = player.vids[+selA.value], b = player.vids[+selB.value];
      const split = +wipeRange.value / 1000;
      line.style.left = split * 100 + '%';
      tagA.textContent = labels[+selA.value]; tagB.textContent = labels[+selB.value];
      if (a.readyState < 2 || b.readyState < 2) return;
      const ctx = canvas.getContext('2d'), W = canvas.width, H = canvas.height, x = Math.round(W * split);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(a, 0, 0, W, H);
      ctx.save(); ctx.beginPath(); ctx.rect(x, 0, W - x, H); ctx.clip();
      ctx.drawImage(b, 0, 0, W, H);
      ctx.restore();
    }
    [selA, selB].forEach((s) => s.addEventListener('change', drawWipe));
    wipeRange.addEventListener('input', drawWipe);
    let dragging = false;
    const moveSplit = (e) => {
      const r = canvas.getBoundingClientRect();
      wipeRange.value = Math.round(clamp((e.clientX - r.left) / r.width, 0, 1) * 1000);
      drawWipe();
    };
    stage.addEventListener('mousedown', (e) => { dragging = true; moveSplit(e); });
    window.addEventListener('mousemove', (e) => { if (dragging) moveSplit(e); });
    window.addEventListener('mouseup', () => { dragging = false; });

    function redraw() { drawZoom(); drawWipe(); }
  }

  // ---------------------------------------------------------------- charts (inline SVG)
  if (D.charts.length) {
    const sec = el('section', { id: 'charts' }, el('h2', { text: 'Charts' }));
    const box = el('div', { class: 'charts' });
    D.charts.forEach((c, i) => box.append(chart(c, i)));
    sec.append(box);
    app.append(sec);
  }

  function niceTicks(lo, hi, n) {
    const span = hi - lo || Math.abs(hi) || 1, raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const stepv = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / stepv) * stepv; v <= hi + stepv * 1e-9; v += stepv) out.push(+v.toPrecision(12));
    return out;
  }
  function logTicks(lo, hi) {  // lo, hi: log10 of the range; ticks at 1, 2, 5 x 10^k, else evenly in log space
    const out = [];
    for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
      for (const f of [1, 2, 5]) { const v = Math.log10(f) + k; if (v >= lo && v <= hi) out.push(v); }
    }
    return out.length >= 2 && out.length <= 12 ? out : niceTicks(lo, hi, 5);
  }
  function fmt(v) {
    if (v == null) return 'n/a';
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3).replace(/\.?0+e/, 'e') : +v.toPrecision(5) + '';
  }

  function chart(c, idx) {
    const W = 640, H = 260, m = { l: 70, r: 14, t: 26, b: 40 };
    const n = Math.max(0, ...c.series.map((s) => s.values.length));
    const ty = (v) => (c.logy ? (v > 0 ? Math.log10(v) : null) : v);
    const ys = c.series.flatMap((s) => s.values.map(ty)).filter((v) => v != null && isFinite(v));
    let lo = Math.min(...ys), hi = Math.max(...ys);
    if (!ys.length) { lo = 0; hi = 1; }
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    const pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
    const X = (x) => m.l + (n > 1 ? x / (n - 1) : 0.5) * (W - m.l - m.r);
    const Y = (y) => m.t + (1 - (y - lo) / (hi - lo)) * (H - m.t - m.b);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, 'data-chart': idx });
    root.append(Object.assign(svg('text', { x: m.l, y: 16, style: 'font-weight:600;fill:#1d2330;font-size:13px' }),
                              { textContent: c.title }));
    for (const v of c.logy ? logTicks(lo, hi) : niceTicks(lo, hi, 5)) {
      root.append(svg('line', { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: 'gridline' }));
      const label = c.logy ? fmt(+Math.pow(10, v).toPrecision(3)) : fmt(v);
      root.append(Object.assign(svg('text', { x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end' }), { textContent: label }));
    }
    for (const v of niceTicks(0, Math.max(n - 1, 1), 8).filter((v) => Number.isInteger(v) && v < Math.max(n, 1))) {
      root.append(Object.assign(svg('text', { x: X(v), y: H - m.b + 15, 'text-anchor': 'middle' }),
                                { textContent: v }));
    }
    root.append(svg('line', { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: 'axis' }));
    root.append(svg('line', { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: 'axis' }));
    root.append(Object.assign(svg('text', { x: (m.l + W - m.r) / 2, y: H - 6, 'text-anchor': 'middle' }),
                              { textContent: c.xlabel }));
    root.append(Object.assign(svg('text', { x: 12, y: (m.t + H - m.b) / 2, 'text-anchor': 'middle',
                                            transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})` }),
                              { textContent: c.ylabel + (c.logy ? ' (log)' : '') }));
    c.series.forEach((s, si) => {
      let d = '', pen = false;
      s.values.forEach((v, x) => {
        const y = v == null ? null : ty(v);
        if (y == null || !isFinite(y)) { pen = false; return; }
        d += (pen ? 'L' : 'M') + X(x).toFixed(1) + ' ' + Y(y).toFixed(1) + ' '; pen = true;
      });
      root.append(svg('path', { d, fill: 'none', stroke: colorOf(s.label), 'stroke-width': 1.6 }));
      if (n <= 120) {
        s.values.forEach((v, x) => {
          const y = v == null ? null : ty(v);
          if (y != null && isFinite(y)) {
            root.append(svg('circle', { cx: X(x), cy: Y(y), r: 2.4, fill: colorOf(s.label),
                                        'data-x': x, 'data-series': si }));
          }
        });
      }
    });
    for (const mk of c.markers) {
      root.append(svg('line', { x1: X(mk.x), x2: X(mk.x), y1: m.t, y2: H - m.b, class: 'marker' }));
      const right = X(mk.x) > (m.l + W - m.r) / 2;  // label on the side with room
      root.append(Object.assign(svg('text', { x: X(mk.x) + (right ? -4 : 4), y: m.t + 10,
                                              'text-anchor': right ? 'end' : 'start' }), { textContent: mk.label }));
    }
    const cursor = svg('line', { x1: 0, x2: 0, y1: m.t, y2: H - m.b, class: 'cursor', visibility: 'hidden' });
    root.append(cursor);
    const hit = svg('rect', { x: m.l, y: m.t, width: W - m.l - m.r, height: H - m.t - m.b, fill: 'transparent',
                              style: c.seek ? 'cursor:pointer' : '' });
    root.append(hit);
    const tip = el('div', { class: 'tip' });
    const box = el('div', { class: 'chart', 'data-title': c.title }, root, tip);
    const xAt = (e) => {
      const r = root.getBoundingClientRect(), px = (e.clientX - r.left) / r.width * W;
      return n > 1 ? clamp(Math.round((px - m.l) / (W - m.l - m.r) * (n - 1)), 0, n - 1) : 0;
    };
    hit.addEventListener('mousemove', (e) => {
      const x = xAt(e);
      const lines = c.series.map((s) => `${s.label}: ${fmt(s.values[x])}`);
      tip.innerHTML = '';
      tip.append(el('b', { text: `${c.xlabel} ${x}` }), ...lines.map((t) => el('div', { text: t })));
      const r = box.getBoundingClientRect();
      tip.style.display = 'block';
      tip.style.left = Math.min(e.clientX - r.left + 12, r.width - 160) + 'px';
      tip.style.top = (e.clientY - r.top + 12) + 'px';
    });
    hit.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
    if (c.seek && player.seek) {
      hit.addEventListener('click', (e) => player.seek(xAt(e)));
      player.listeners.push((i) => {
        cursor.setAttribute('x1', X(i)); cursor.setAttribute('x2', X(i));
        cursor.setAttribute('visibility', i < n ? 'visible' : 'hidden');
      });
    }
    const legend = el('div', { class: 'legend' }, ...c.series.map((s, si) =>
      el('span', {}, el('i', { style: `background:${colorOf(s.label)}` }), s.label)));
    box.append(legend);
    if (c.note) box.append(el('div', { class: 'note', text: c.note }));
    if (c.seek && player.seek) player.listeners.forEach((f) => f(player.frame));
    return box;
  }

  // ---------------------------------------------------------------- tables (best bold, second underlined)
  function table(t, ti) {
    const shown = (v, col) => (v == null ? 'n/a' : typeof v === 'string' ? v : (v * col.scale).toFixed(col.decimals));
    const cells = t.rows.map((r) => r.values.map((v, j) => shown(v, t.columns[j])));
    const mark = cells.map((r) => r.map(() => ''));
    const rankOf = (vals, better) => {  // the best two distinct shown values (ties share the mark), as report.md
      const uniq = [...new Set(vals.filter((s) => s !== 'n/a' && !isNaN(+s)))].map(Number);
      uniq.sort((a, b) => (better === 'max' ? b - a : a - b));
      return uniq.slice(0, 2);
    };
    if (t.rank === 'columns') {
      t.columns.forEach((col, j) => {
        if (!col.better) return;
        const top = rankOf(cells.map((r) => r[j]), col.better);
        cells.forEach((r, i) => { const k = top.indexOf(+r[j]); if (r[j] !== 'n/a' && k >= 0) mark[i][j] = k ? 'u' : 'b'; });
      });
    } else if (t.rank === 'rows') {
      cells.forEach((r, i) => {
        const better = t.columns.find((c) => c.better)?.better;
        if (!better) return;
        const top = rankOf(r, better);
        r.forEach((s, j) => { const k = top.indexOf(+s); if (s !== 'n/a' && k >= 0) mark[i][j] = k ? 'u' : 'b'; });
      });
    }
    const head = el('tr', {}, el('th', { text: '' }), ...t.columns.map((c) => el('th', { text: c.title })));
    const body = t.rows.map((r, i) => el('tr', {},
      el('td', {}, r.href ? el('a', { href: r.href, text: r.label }) : r.label),
      ...cells[i].map((s, j) => el('td', {}, mark[i][j] ? el(mark[i][j], { text: s }) : s))));
    const sec = el('section', { class: 'table', 'data-table': ti }, el('h2', { text: t.title }),
                   el('table', {}, el('thead', {}, head), el('tbody', {}, ...body)));
    if (t.note) sec.append(el('div', { class: 'note', text: t.note }));
    return sec;
  }
  D.tables.forEach((t, i) => tablesBox.append(table(t, i)));

  // ---------------------------------------------------------------- provenance
  const prov = el('section', { id: 'provenance' }, el('h2', { text: 'Provenance' }));
  prov.append(el('dl', { class: 'prov' }, ...Object.entries(D.provenance).flatMap(([k, v]) =>
    [el('dt', { text: k }), el('dd', { text: v })])));
  if (D.config_text) {
    prov.append(el('details', {}, el('summary', { text: 'resolved config' }), el('pre', { text: D.config_text })));
  }
  app.append(prov);

  window.vidplugReport = player;  // for scripted checks (the browser tests)
})();
