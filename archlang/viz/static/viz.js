// archlang viz: pan/zoom and the details panel. `#selftest` clicks the largest node and
// records what the panel shows in body[data-selftest], for a headless browser test.
(function () {
  const data = JSON.parse(document.getElementById('units').textContent);
  const stage = document.getElementById('stage');
  const svg = stage.querySelector('svg');
  const panel = document.getElementById('panel');
  svg.removeAttribute('width'); svg.removeAttribute('height');
  svg.style.width = '100%'; svg.style.height = '100%';
  const box = svg.viewBox.baseVal;
  const home = {x: box.x, y: box.y, w: box.width, h: box.height};
  let view = Object.assign({}, home);
  function apply() { svg.setAttribute('viewBox', [view.x, view.y, view.w, view.h].join(' ')); }
  function point(ev) {
    const r = svg.getBoundingClientRect();
    return {x: view.x + (ev.clientX - r.left) / r.width * view.w, y: view.y + (ev.clientY - r.top) / r.height * view.h};
  }
  stage.addEventListener('wheel', function (ev) {
    ev.preventDefault();
    const p = point(ev), k = ev.deltaY > 0 ? 1.15 : 1 / 1.15;
    view = {x: p.x - (p.x - view.x) * k, y: p.y - (p.y - view.y) * k, w: view.w * k, h: view.h * k};
    apply();
  }, {passive: false});
  let drag = null;
  stage.addEventListener('mousedown', function (ev) { drag = {x: ev.clientX, y: ev.clientY, v: Object.assign({}, view)}; });
  window.addEventListener('mouseup', function () { drag = null; });
  window.addEventListener('mousemove', function (ev) {
    if (!drag) return;
    const r = svg.getBoundingClientRect();
    view.x = drag.v.x - (ev.clientX - drag.x) / r.width * view.w;
    view.y = drag.v.y - (ev.clientY - drag.y) / r.height * view.h;
    apply();
  });
  document.getElementById('reset').addEventListener('click', function () { view = Object.assign({}, home); apply(); });
  function row(key, value) {
    const tr = document.createElement('tr');
    const th = document.createElement('th'); th.textContent = key;
    const td = document.createElement('td'); td.textContent = value;
    tr.appendChild(th); tr.appendChild(td); return tr;
  }
  function show(id) {
    const u = data[id];
    if (!u) return;
    panel.querySelector('h2').textContent = u.title;
    panel.querySelector('.what').textContent = u.what;
    const table = panel.querySelector('table');
    table.replaceChildren();
    for (const [k, v] of u.rows) table.appendChild(row(k, v));
    panel.querySelector('.where').textContent = u.where;
    panel.querySelector('pre').textContent = u.line;
    panel.classList.add('open');
    document.querySelectorAll('g.node.selected').forEach(function (g) { g.classList.remove('selected'); });
    const g = document.getElementById(id);
    if (g) g.classList.add('selected');
  }
  document.querySelectorAll('g.node').forEach(function (g) {
    if (data[g.id]) {
      g.style.cursor = 'pointer';
      g.addEventListener('click', function (ev) { ev.stopPropagation(); show(g.id); });
    }
  });
  if (location.hash === '#selftest') {
    const ids = Object.keys(data).sort(function (a, b) { return data[b].params - data[a].params; });
    const g = document.getElementById(ids[0]);
    g.dispatchEvent(new MouseEvent('click', {bubbles: true}));
    const r = svg.getBoundingClientRect();
    document.body.setAttribute('data-selftest', JSON.stringify({
      nodes: Array.from(document.querySelectorAll('g.node')).filter(function (n) { return data[n.id]; }).length,
      clicked: ids[0],
      panel: panel.classList.contains('open') ? panel.textContent.replace(/\s+/g, ' ').trim() : '',
      width: Math.round(r.width), height: Math.round(r.height)}));
  }
})();
