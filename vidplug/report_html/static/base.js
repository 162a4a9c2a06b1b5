/* vidplug report page, part 1/4: data, helpers, header, warnings. Frames are 0-based. Written for vidplug, no dependencies. The parts run in the order of
   vidplug/report_html/page.py:SCRIPTS inside one function scope; the page data is the JSON in #vp-data. */
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

