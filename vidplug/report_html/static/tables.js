/* vidplug report page, part 4/4: tables, provenance. Written for vidplug, no dependencies. The parts run in the order of
   vidplug/report_html/page.py:SCRIPTS inside one function scope; the page data is the JSON in #vp-data. */
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
