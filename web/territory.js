/* Maillage staff page: the territory at a glance.
 *
 * The map is SVG drawn from GET /v1/communes: every commune of Normandy is a
 * faint dot, tinted by department, so the dot cloud itself draws the region;
 * GET /v1/map then places open needs, open offers and matches at their
 * communes. The figures (GET /v1/figures) become key numbers, grouped CSS
 * bar charts by department and by category, and tables (the text
 * alternative of the charts and of the map).
 *
 * Loaded before app.js, which provides MG.el, MG.api and friends at run time. */
(function () {
  'use strict';

  var MG = window.MG = window.MG || {};
  var SVG_NS = 'http://www.w3.org/2000/svg';

  var MEASURES = [
    {key: 'openNeeds', label: 'Besoins ouverts', cls: 'm-needs'},
    {key: 'openOffers', label: 'Offres ouvertes', cls: 'm-offers'},
    {key: 'matchesProposed', label: 'Mises en relation proposées', cls: 'm-matches'},
    {key: 'matchesAccepted', label: 'Mises en relation faites', cls: 'm-accepted'},
    {key: 'unmetNeeds', label: 'Besoins sans réponse', cls: 'm-unmet'}
  ];
  // The bars show the first three; the tables all five.
  var CHARTED = MEASURES.slice(0, 3);

  var t = {
    communes: null,       // [{code, name, department, x, y}]
    byCode: {},
    bounds: null,
    communesPromise: null,
    generation: 0,
    initialised: false
  };

  function $(id) { return document.getElementById(id); }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }

  // ---- projection ------------------------------------------------------------
  // Equirectangular around the region's mid-latitude: at this scale (about
  // 250 km) it is indistinguishable from a proper conformal projection.

  var WIDTH = 1000;

  function computeBounds(list) {
    var minLon = Infinity, maxLon = -Infinity, minLat = Infinity, maxLat = -Infinity;
    list.forEach(function (c) {
      if (c.lon < minLon) minLon = c.lon;
      if (c.lon > maxLon) maxLon = c.lon;
      if (c.lat < minLat) minLat = c.lat;
      if (c.lat > maxLat) maxLat = c.lat;
    });
    var k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
    var pad = 0.04 * (maxLon - minLon);
    minLon -= pad; maxLon += pad; minLat -= pad * 0.7; maxLat += pad * 0.7;
    var scale = WIDTH / ((maxLon - minLon) * k);
    return {minLon: minLon, maxLat: maxLat, k: k, scale: scale, height: Math.ceil((maxLat - minLat) * scale)};
  }

  function project(b, lat, lon) {
    return [(lon - b.minLon) * b.k * b.scale, (b.maxLat - lat) * b.scale];
  }

  function loadCommunes() {
    if (t.communesPromise) return t.communesPromise;
    t.communesPromise = MG.api('GET', 'v1/communes').then(function (data) {
      var list = [];
      ((data && data.communes) || []).forEach(function (c) {
        var lat = Number(c.lat), lon = Number(c.lon);
        if (!c.code || !isFinite(lat) || !isFinite(lon)) return;
        list.push({code: String(c.code), name: c.name || c.code, department: c.department || '', lat: lat, lon: lon});
      });
      if (!list.length) throw {status: -1, message: 'La liste des communes est vide\u00a0: la carte ne peut pas être dessinée.'};
      var b = computeBounds(list);
      list.forEach(function (c) {
        var p = project(b, c.lat, c.lon);
        c.x = p[0]; c.y = p[1];
        t.byCode[c.code] = c;
      });
      t.communes = list;
      t.bounds = b;
      return list;
    }, function (e) {
      t.communesPromise = null; // try again next time
      throw e;
    });
    return t.communesPromise;
  }

  // ---- the map ------------------------------------------------------------------

  var DEP_CLASSES = {'14': 'dep-14', '27': 'dep-27', '50': 'dep-50', '61': 'dep-61', '76': 'dep-76'};

  function drawBase(box) {
    var b = t.bounds;
    var root = svg('svg', {viewBox: '0 0 ' + WIDTH + ' ' + b.height, class: 'map', role: 'img',
      'aria-labelledby': 'map-svg-title map-svg-desc', preserveAspectRatio: 'xMidYMid meet', focusable: 'false'});
    var title = svg('title', {id: 'map-svg-title'});
    title.textContent = 'Carte de la Normandie';
    var desc = svg('desc', {id: 'map-svg-desc'});
    root.appendChild(title);
    root.appendChild(desc);
    var dots = svg('g', {class: 'communes'});
    // One path per department: thousands of tiny dots as path segments
    // render much faster than thousands of <circle> elements.
    var byDep = {};
    t.communes.forEach(function (c) {
      var key = DEP_CLASSES[c.department] ? c.department : 'other';
      (byDep[key] = byDep[key] || []).push('M' + c.x.toFixed(1) + ' ' + c.y.toFixed(1) + 'h0');
    });
    Object.keys(byDep).forEach(function (dep) {
      var path = svg('path', {d: byDep[dep].join(''), class: 'commune-dots ' + (DEP_CLASSES[dep] || 'dep-other')});
      path.setAttribute('data-count', String(byDep[dep].length));
      dots.appendChild(path);
    });
    root.appendChild(dots);
    // Department names at the centre of their communes.
    var labels = svg('g', {class: 'dep-labels', 'aria-hidden': 'true'});
    var sums = {};
    t.communes.forEach(function (c) {
      var s = sums[c.department] = sums[c.department] || {x: 0, y: 0, n: 0};
      s.x += c.x; s.y += c.y; s.n++;
    });
    Object.keys(sums).forEach(function (dep) {
      var s = sums[dep];
      if (!s.n || !dep) return;
      var text = svg('text', {x: (s.x / s.n).toFixed(0), y: (s.y / s.n).toFixed(0), 'text-anchor': 'middle'});
      text.textContent = MG.departmentName(dep);
      labels.appendChild(text);
    });
    root.appendChild(labels);
    var markers = svg('g', {class: 'markers'});
    root.appendChild(markers);
    MG.clear(box);
    box.appendChild(root);
    return {root: root, desc: desc, markers: markers};
  }

  function radius(n) {
    return 6 + 4.5 * Math.sqrt(Math.max(0, n));
  }

  function drawMarkers(map, items) {
    MG.clear(map.markers);
    var totals = {needs: 0, offers: 0, matches: 0, communes: 0};
    // Big first, so small markers stay visible on top.
    var sorted = items.slice().sort(function (a, b) {
      return (b.openNeeds + b.openOffers + b.matches) - (a.openNeeds + a.openOffers + a.matches);
    });
    sorted.forEach(function (m) {
      var c = t.byCode[m.code];
      var x, y;
      if (c) { x = c.x; y = c.y; } else if (isFinite(m.lat) && isFinite(m.lon)) {
        var p = project(t.bounds, m.lat, m.lon); x = p[0]; y = p[1];
      } else return;
      totals.communes++;
      totals.needs += m.openNeeds; totals.offers += m.openOffers; totals.matches += m.matches;
      var g = svg('g', {class: 'marker', 'data-commune': m.code});
      var tip = svg('title');
      tip.textContent = label(m);
      g.appendChild(tip);
      if (m.matches > 0) g.appendChild(svg('circle', {cx: x.toFixed(1), cy: y.toFixed(1), r: (radius(m.matches) + 6).toFixed(1), class: 'mk-matches'}));
      if (m.openNeeds > 0) g.appendChild(svg('circle', {cx: (x - (m.openOffers > 0 ? 4 : 0)).toFixed(1), cy: y.toFixed(1), r: radius(m.openNeeds).toFixed(1), class: 'mk-needs'}));
      if (m.openOffers > 0) g.appendChild(svg('circle', {cx: (x + (m.openNeeds > 0 ? 4 : 0)).toFixed(1), cy: y.toFixed(1), r: radius(m.openOffers).toFixed(1), class: 'mk-offers'}));
      map.markers.appendChild(g);
    });
    map.desc.textContent = 'Points gris et teintés\u00a0: les ' + MG.formatNumber(t.communes.length) +
      ' communes de Normandie. Sur la carte, ' + plural(totals.needs, 'besoin ouvert', 'besoins ouverts') + ', ' +
      plural(totals.offers, 'offre ouverte', 'offres ouvertes') + ' et ' +
      plural(totals.matches, 'mise en relation', 'mises en relation') + ', dans ' +
      plural(totals.communes, 'commune', 'communes') + '. Le détail est dans le tableau sous la carte.';
    return totals;
  }

  /* "0 besoin ouvert", "1 besoin ouvert", "2 besoins ouverts": French
   * takes the singular below two. */
  function plural(n, one, many) {
    return MG.formatNumber(n) + ' ' + (n < 2 ? one : many);
  }

  function label(m) {
    var dep = t.byCode[m.code] ? MG.departmentName(t.byCode[m.code].department) : '';
    return (m.name || m.code) + (dep ? ' (' + dep + ')' : '') + '\u00a0: ' +
      plural(m.openNeeds, 'besoin ouvert', 'besoins ouverts') + ', ' +
      plural(m.openOffers, 'offre ouverte', 'offres ouvertes') + ', ' +
      plural(m.matches, 'mise en relation', 'mises en relation');
  }

  function mapTable(items) {
    var el = MG.el;
    var sorted = items.slice().sort(function (a, b) {
      return (b.openNeeds + b.openOffers + b.matches) - (a.openNeeds + a.openOffers + a.matches) ||
        String(a.name).localeCompare(String(b.name), 'fr');
    });
    var tbody = el('tbody');
    sorted.forEach(function (m) {
      var c = t.byCode[m.code];
      tbody.appendChild(el('tr', null, el('th', {scope: 'row'}, m.name || m.code),
        el('td', null, c ? MG.departmentName(c.department) : ''),
        el('td', {class: 'num'}, MG.formatNumber(m.openNeeds)),
        el('td', {class: 'num'}, MG.formatNumber(m.openOffers)),
        el('td', {class: 'num'}, MG.formatNumber(m.matches))));
    });
    if (!sorted.length) {
      tbody.appendChild(el('tr', null, el('td', {colspan: '5'}, 'Rien d’ouvert pour ces critères.')));
    }
    return el('table', {class: 'data'},
      el('caption', {class: 'visually-hidden'}, 'Communes avec des besoins, des offres ou des mises en relation'),
      el('thead', null, el('tr', null, el('th', {scope: 'col'}, 'Commune'), el('th', {scope: 'col'}, 'Département'),
        el('th', {scope: 'col', class: 'num'}, 'Besoins ouverts'), el('th', {scope: 'col', class: 'num'}, 'Offres ouvertes'),
        el('th', {scope: 'col', class: 'num'}, 'Mises en relation'))),
      tbody);
  }

  function normaliseMap(data) {
    return ((data && data.communes) || []).map(function (m) {
      return {code: String(m.code || ''), name: m.name || m.code, lat: Number(m.lat), lon: Number(m.lon),
        openNeeds: Number(m.openNeeds) || 0, openOffers: Number(m.openOffers) || 0, matches: Number(m.matches) || 0};
    }).filter(function (m) { return m.code; });
  }

  // ---- figures -----------------------------------------------------------------

  function num(row, key) { return Number(row && row[key]) || 0; }

  function renderTotals(totals) {
    var el = MG.el;
    var dl = $('totals');
    MG.clear(dl);
    MEASURES.forEach(function (m) {
      dl.appendChild(el('div', {class: 'total ' + m.cls}, el('dt', null, m.label), el('dd', null, MG.formatNumber(num(totals, m.key)))));
    });
  }

  /* Grouped horizontal bars: one row per department or category, one bar per
   * charted measure. Each bar's number is text; a visually hidden label
   * names the measure, so the list reads well without the picture. */
  function barChart(rows, title) {
    var el = MG.el;
    var max = 0;
    rows.forEach(function (r) { CHARTED.forEach(function (m) { max = Math.max(max, num(r, m.key)); }); });
    var legend = el('ul', {class: 'legend', 'aria-hidden': 'true'});
    CHARTED.forEach(function (m) {
      legend.appendChild(el('li', null, el('span', {class: 'swatch ' + m.cls}), m.label));
    });
    var list = el('ul', {class: 'bars', 'aria-label': title});
    rows.forEach(function (r) {
      var group = el('ul', {class: 'bar-group'});
      CHARTED.forEach(function (m) {
        var v = num(r, m.key);
        var bar = el('span', {class: 'bar ' + m.cls, 'aria-hidden': 'true'});
        bar.style.width = (max > 0 ? Math.max(v > 0 ? 1.5 : 0, 100 * v / max) : 0).toFixed(1) + '%';
        group.appendChild(el('li', {class: 'bar-line'},
          el('span', {class: 'visually-hidden'}, m.label + '\u00a0: '),
          el('span', {class: 'bar-track'}, bar),
          el('span', {class: 'bar-value'}, MG.formatNumber(v))));
      });
      var li = el('li', {class: 'bar-row'}, el('span', {class: 'bar-label'}, r._label), group);
      li.dataset.code = r.code || '';
      list.appendChild(li);
    });
    return el('div', {class: 'chart'}, legend, list);
  }

  function figuresTable(rows, firstHeader, caption, extra) {
    var el = MG.el;
    var head = el('tr', null, el('th', {scope: 'col'}, firstHeader));
    if (extra) head.appendChild(el('th', {scope: 'col'}, extra.header));
    MEASURES.forEach(function (m) { head.appendChild(el('th', {scope: 'col', class: 'num'}, m.label)); });
    var tbody = el('tbody');
    rows.forEach(function (r) {
      var tr = el('tr', null, el('th', {scope: 'row'}, r._label));
      if (extra) tr.appendChild(el('td', null, extra.value(r)));
      MEASURES.forEach(function (m) { tr.appendChild(el('td', {class: 'num'}, MG.formatNumber(num(r, m.key)))); });
      tbody.appendChild(tr);
    });
    if (!rows.length) tbody.appendChild(el('tr', null, el('td', {colspan: String(MEASURES.length + 1 + (extra ? 1 : 0))}, 'Aucun chiffre.')));
    return el('table', {class: 'data'}, el('caption', {class: 'visually-hidden'}, caption), el('thead', null, head), tbody);
  }

  function renderFigures(f, department) {
    renderTotals(f.totals || {});
    $('totals-scope').textContent = department ? '(' + MG.departmentName(department) + ')' : '(Normandie)';
    var deps = (f.byDepartment || []).map(function (r) {
      r._label = r.name || MG.departmentName(r.code) || r.code; return r;
    });
    var cats = (f.byCategory || []).map(function (r) {
      r._label = r.label || MG.categoryLabel(r.code) || r.code; return r;
    }).sort(function (a, b) {
      return (num(b, 'openNeeds') + num(b, 'openOffers')) - (num(a, 'openNeeds') + num(a, 'openOffers')) ||
        a._label.localeCompare(b._label, 'fr');
    });
    var epcis = (f.byEpci || []).map(function (r) {
      r._label = r.name || r.code; return r;
    }).sort(function (a, b) {
      return num(b, 'openNeeds') - num(a, 'openNeeds') || a._label.localeCompare(b._label, 'fr');
    });
    var depChart = $('dep-chart'); MG.clear(depChart); depChart.appendChild(barChart(deps, 'Chiffres par département'));
    // Categories with nothing to draw stay in the table only.
    var drawn = cats.filter(function (r) { return CHARTED.some(function (m) { return num(r, m.key) > 0; }); });
    var catChart = $('cat-chart'); MG.clear(catChart); catChart.appendChild(barChart(drawn, 'Chiffres par catégorie'));
    if (drawn.length < cats.length) {
      catChart.appendChild(MG.el('p', {class: 'hint'}, drawn.length ? 'Les catégories sans besoin, offre ni mise en relation ne figurent que dans le tableau.'
        : 'Aucune catégorie n’a de besoin, d’offre ou de mise en relation pour le moment.'));
    }
    var depTable = $('dep-table'); MG.clear(depTable); depTable.appendChild(figuresTable(deps, 'Département', 'Chiffres par département'));
    var catTable = $('cat-table'); MG.clear(catTable); catTable.appendChild(figuresTable(cats, 'Catégorie', 'Chiffres par catégorie'));
    var epciTable = $('epci-table'); MG.clear(epciTable);
    epciTable.appendChild(figuresTable(epcis, 'EPCI', 'Chiffres par EPCI',
      {header: 'Département', value: function (r) { return MG.departmentName(r.department); }}));
    var when = f.generatedAt ? new Date(f.generatedAt) : null;
    $('figures-generated').textContent = when && !isNaN(when.getTime())
      ? 'Chiffres calculés le ' + when.toLocaleString('fr-FR', {dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/Paris'}) + '.'
      : '';
  }

  // ---- the view ---------------------------------------------------------------------

  var map = null;

  function show() {
    var generation = ++t.generation;
    var category = $('t-category').value;
    var department = $('t-department').value;
    MG.setStatus('territory-status', 'Chargement du territoire…');
    var errors = [];
    var box = $('map-box');
    box.setAttribute('aria-busy', 'true');
    var mapDone = Promise.all([loadCommunes(), MG.api('GET', 'v1/map' + MG.qs({category: category}))]).then(function (r) {
      if (generation !== t.generation) return;
      if (!map || !box.contains(map.root)) map = drawBase(box);
      var items = normaliseMap(r[1]);
      drawMarkers(map, items);
      var table = $('map-table');
      MG.clear(table);
      table.appendChild(mapTable(items));
    }).catch(function (e) { errors.push(e); });
    var figuresDone = MG.api('GET', 'v1/figures' + MG.qs({department: department})).then(function (f) {
      if (generation !== t.generation) return;
      renderFigures(f || {}, department);
    }).catch(function (e) { errors.push(e); });
    Promise.all([mapDone, figuresDone]).then(function () {
      if (generation !== t.generation) return;
      box.removeAttribute('aria-busy');
      var real = errors.filter(function (e) { return e && e.status !== 401; });
      MG.setStatus('territory-status', real.length ? real[0].message : '');
    });
  }

  function reset() {
    t.generation++;
    map = null;
    MG.clear($('map-box'));
    ['map-table', 'dep-chart', 'cat-chart', 'dep-table', 'cat-table', 'epci-table', 'totals'].forEach(function (id) { MG.clear($(id)); });
    $('figures-generated').textContent = '';
  }

  function init() {
    if (t.initialised) return;
    t.initialised = true;
    var form = $('territory-filters');
    form.addEventListener('change', show);
    form.addEventListener('submit', function (ev) { ev.preventDefault(); });
  }

  MG.territory = {init: init, show: show, reset: reset};
})();
