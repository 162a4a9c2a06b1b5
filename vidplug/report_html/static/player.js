/* vidplug report page, part 2/4: synchronised videos, zoom, wipe. Written for vidplug, no dependencies. The parts run in the order of
   vidplug/report_html/page.py:SCRIPTS inside one function scope; the page data is the JSON in #vp-data. */
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

