/* vidplug report page, part 3/4: charts (inline SVG). Written for vidplug, no dependencies. The parts run in the order of
   vidplug/report_html/page.py:SCRIPTS inside one function scope; the page data is the JSON in #vp-data. */
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
    for (const [mi, mk] of c.markers.entries()) {
      root.append(svg('line', { x1: X(mk.x), x2: X(mk.x), y1: m.t, y2: H - m.b, class: 'marker' }));
      const right = X(mk.x) > (m.l + W - m.r) / 2;  // label on the side with room
      root.append(Object.assign(svg('text', { x: X(mk.x) + (right ? -4 : 4), y: m.t + 10 + 12 * mi,
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

