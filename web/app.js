/* Maillage staff page: sign-in, inbox with feedback, live stream, collective
 * needs, and the territory view (drawn by territory.js).
 *
 * Plain browser JavaScript, no build step, no dependency. Every piece of data
 * from the server enters the DOM as text (textContent, createTextNode,
 * setAttribute of non-URL attributes): never through innerHTML. URLs built
 * from data are limited to mailto:, tel: and http(s):.
 *
 * All API paths are relative ("v1/...") so the page also works behind a
 * reverse proxy that mounts the gateway under a prefix. */
(function () {
  'use strict';

  var MG = window.MG = window.MG || {};

  // ---- small DOM helpers ---------------------------------------------------

  /* el('p', {class: 'x', 'aria-label': 'y'}, 'text', child, ...): an element
   * whose string children become text nodes. Attributes are set with
   * setAttribute (no event handlers, no HTML). */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      node.setAttribute(k, v === true ? '' : String(v));
    });
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    if (typeof child === 'string' || typeof child === 'number') {
      node.appendChild(document.createTextNode(String(child)));
    } else {
      node.appendChild(child);
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function $(id) { return document.getElementById(id); }

  /* A link whose target comes from data: only safe schemes, else plain text. */
  function safeLink(href, text) {
    var h = String(href || '');
    if (/^(https?:\/\/|mailto:|tel:)/i.test(h)) {
      var a = el('a', {href: h}, text);
      if (/^https?:/i.test(h)) { a.setAttribute('rel', 'noopener noreferrer'); a.setAttribute('target', '_blank'); }
      return a;
    }
    return document.createTextNode(String(text));
  }

  MG.el = el;
  MG.clear = clear;

  // ---- words ------------------------------------------------------------------

  var DEPARTMENTS = {'14': 'Calvados', '27': 'Eure', '50': 'Manche', '61': 'Orne', '76': 'Seine-Maritime'};

  var KINDS = {
    match: 'Mise en relation',
    collective_need: 'Besoin collectif',
    unanswered_need: 'Besoin sans réponse',
    member_joined: 'Nouvelle adhésion',
    cooperation_proposed: 'Proposition de coopération',
    cooperation_answered: 'Réponse à une proposition de coopération',
    digest: 'Récapitulatif'
  };

  var STATUS = {
    new: 'À traiter',
    contact_made: 'Mise en relation faite',
    not_relevant: 'Pas pertinent'
  };

  var OUTCOMES = {
    contact_made: 'MATCH_OUTCOME_CONTACT_MADE',
    not_relevant: 'MATCH_OUTCOME_NOT_RELEVANT'
  };

  var COMPONENTS = {
    distance: 'Distance',
    keywords: 'Mots-clés',
    sector: 'Secteur d’activité',
    intercooperation: 'Intercoopération',
    freshness: 'Fraîcheur',
    feedback: 'Retours des chargé·e·s de mission',
    fairness: 'Équité'
  };

  /* What a component measures, when the match gives no detail of its own. */
  var COMPONENT_HINTS = {
    distance: 'Plus les deux structures sont proches, plus il est élevé.',
    keywords: 'Mots communs aux titres, descriptions et mots-clés.',
    sector: 'Proximité des secteurs d’activité (codes NAF) des deux structures.',
    intercooperation: 'Deux structures de l’ESS\u00a0: une coopération entre pairs.',
    freshness: 'Une offre récente compte davantage.',
    feedback: 'Suites données aux mises en relation passées de cette offre (50\u00a0% sans retour).',
    fairness: 'Un fournisseur souvent proposé ces derniers temps descend, pour laisser leur place aux autres.'
  };

  var FAMILIES = {
    FAMILY_ASSOCIATION: 'Association', FAMILY_COOPERATIVE: 'Coopérative', FAMILY_MUTUAL: 'Mutuelle',
    FAMILY_FOUNDATION: 'Fondation', FAMILY_ESS_COMPANY: 'Entreprise de l’ESS',
    FAMILY_LOCAL_BUSINESS: 'Acteur économique local', FAMILY_PUBLIC_BODY: 'Organisme public',
    FAMILY_NETWORK: 'Réseau'
  };

  /* map[key] if the map itself has it: ids such as "constructor" are valid
   * and must not find Object's own members. */
  function own(map, key) {
    return map && Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined;
  }

  function departmentName(code) {
    if (!code) return '';
    return own(state.taxonomy.departments, code) || own(DEPARTMENTS, code) || code;
  }

  /* A network by the name [networks] gives it, else by its id. */
  function networkName(id) {
    return own(state.taxonomy.networks, id) || id;
  }

  function categoryLabel(code) {
    if (!code) return '';
    return own(state.taxonomy.categories, code) || code;
  }

  var numberFormat = new Intl.NumberFormat('fr-FR');
  function formatNumber(n) { return numberFormat.format(Number(n) || 0); }
  MG.formatNumber = formatNumber;

  function formatDate(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    try {
      return d.toLocaleString('fr-FR', {dateStyle: 'medium', timeStyle: 'short', timeZone: 'Europe/Paris'});
    } catch (e) {
      return d.toLocaleString('fr-FR');
    }
  }

  function formatDay(ymd) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(ymd || '');
    return m ? m[3] + '/' + m[2] + '/' + m[1] : (ymd || '');
  }

  function formatTime(d) {
    try {
      return d.toLocaleTimeString('fr-FR', {hour: '2-digit', minute: '2-digit', timeZone: 'Europe/Paris'});
    } catch (e) {
      return d.toLocaleTimeString('fr-FR');
    }
  }

  function percent(score) {
    var s = Number(score);
    if (!isFinite(s) || s < 0) return '';
    return Math.round(s * 100) + '\u202f%';
  }

  /* A match's distance as its explanation and the notifications say it
   * (mg_fr_distance()): "dans la même commune" (the matcher measures between
   * communes: one commune is 0 km, and below 0,05 km nothing is left once
   * rounded), "moins d'un km", else whole km ("4 km": "3,6 km" here read
   * « à 4 km » beside it); an offer placed by its territory only is at no
   * distance (-1). */
  function distanceText(km) {
    var d = Number(km);
    if (km === undefined || km === null || !isFinite(d)) return '';
    if (d < 0) return 'sur le territoire desservi';
    if (d < 0.05) return 'dans la même commune';
    var whole = Math.round(Math.round(d * 10) / 10);
    return whole < 1 ? 'moins d\u2019un\u00a0km' : whole + '\u00a0km';
  }

  function capitalize(text) {
    return text ? String(text).charAt(0).toUpperCase() + String(text).slice(1) : '';
  }

  /* "1re des offres proposées pour ce besoin", "2e …": a match's rank among its
   * need's open matches, as the API computes it now. */
  function rankText(rank) {
    var r = Number(rank);
    if (!isFinite(r) || r < 1) return '';
    return (r === 1 ? '1re' : r + 'e') + ' des offres proposées pour ce besoin';
  }

  // ---- state -------------------------------------------------------------------

  var state = {
    me: null,
    taxonomy: {categories: {}, departments: {}, categoryList: [], departmentList: []},
    inbox: {items: [], byId: {}, nextCursor: null, loading: false, generation: 0, loaded: false, catchUp: false},
    unseen: 0,
    stream: {es: null, lastEventId: '', retryTimer: null, retryMs: 2000, onFirstOpen: null},
    matches: {},      // match id -> match JSON (details, loaded lazily)
    matchEpochs: {},  // match id -> how many times the stream said it changed
    detailShown: null, // the match the detail view shows: {id, retired, revision}
    returnTo: '',     // the card whose detail link was followed (its notification's id)
    view: '',
    title: '',        // the tab's title without its count (setTitle())
    collectiveGeneration: 0
  };
  MG.state = state;

  // ---- the API -------------------------------------------------------------------

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code || '';
    this.message = message;
  }

  /* A comment as the API takes it: text pasted from a word processor brings
   * carriage returns, page and line breaks of its own, and invisible
   * direction marks, which the API refuses (control characters): they become
   * line breaks, or go. */
  function plainComment(text) {
    return text.replace(/\r\n?|[\f\v\u2028\u2029]/g, '\n')
      .replace(/[\u0000-\u0008\u000e-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '')
      .trim();
  }

  /* The French message for a failed request. */
  function frenchError(status, res, body) {
    if (status === 400 && body && body.error && body.error.field === 'comment')
      return 'Le commentaire n’est pas accepté (trop long, ou un caractère non admis)\u00a0: corrigez-le, puis réessayez.';
    var retry = res && res.headers ? parseInt(res.headers.get('Retry-After') || '', 10) : NaN;
    var later = isFinite(retry) && retry > 0 ? ' Réessayez dans ' + retry + '\u00a0s.' : ' Réessayez dans un instant.';
    switch (status) {
      case 0: return 'Le serveur Maillage ne répond pas. Vérifiez votre connexion, puis réessayez.';
      case 400: return 'La demande a été refusée car elle est incomplète ou invalide.';
      case 401: return 'Votre session a pris fin (jeton inconnu ou révoqué). Reconnectez-vous.';
      case 403: return 'Vous n’avez pas accès à cette information avec ce jeton.';
      case 404: return 'Élément introuvable\u00a0: il a peut-être été retiré.';
      case 409: return 'Cette action entre en conflit avec une autre modification. Rechargez la page.';
      case 413: return 'La demande est trop volumineuse.';
      case 415: return 'Le serveur n’a pas compris le format de la demande.';
      case 429: return 'Trop de demandes en peu de temps.' + later;
      case 503: return 'Le service est momentanément indisponible.' + later;
      default:
        if (status >= 500) return 'Le serveur a rencontré une erreur (' + status + ').' + later;
        return 'La demande a échoué (' + status + ').';
    }
  }

  /* fetch() the API with the session cookie. Resolves with the JSON body (or
   * null for 204); rejects with an ApiError carrying a French message. A 401
   * anywhere but the sign-in itself ends the session on the page. */
  function api(method, path, body) {
    var opts = {method: method, credentials: 'same-origin', cache: 'no-store', headers: {Accept: 'application/json'}};
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (res) {
      if (res.status === 204) return null;
      var ct = res.headers.get('Content-Type') || '';
      var parse = ct.indexOf('json') >= 0 ? res.json().catch(function () { return null; }) : Promise.resolve(null);
      return parse.then(function (data) {
        if (res.ok) return data;
        var code = data && data.error && data.error.code;
        var err = new ApiError(res.status, code, frenchError(res.status, res, data));
        if (res.status === 401 && path !== 'v1/session') sessionLost();
        throw err;
      });
    }, function () {
      throw new ApiError(0, 'network', frenchError(0));
    });
  }

  function qs(params) {
    var parts = [];
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v !== '' && v !== null && v !== undefined) parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(v));
    });
    return parts.length ? '?' + parts.join('&') : '';
  }

  MG.api = api;
  MG.qs = qs;

  // ---- messages ----------------------------------------------------------------------

  function showBanner(text) {
    $('banner-text').textContent = text;
    $('banner').hidden = false;
  }

  function hideBanner() {
    $('banner').hidden = true;
    $('banner-text').textContent = '';
  }

  function announce(text) {
    var a = $('announcer');
    // Emptied first so that the same sentence twice is announced twice.
    a.textContent = '';
    window.setTimeout(function () { a.textContent = text; }, 50);
  }

  function setStatus(id, text) {
    $(id).textContent = text || '';
  }

  MG.showBanner = showBanner;
  MG.setStatus = setStatus;

  /* An error from a background action: 401 is handled by sessionLost(). */
  function reportError(err, statusId) {
    if (err && err.status === 401) return;
    var text = (err && err.message) || frenchError(0);
    if (statusId) setStatus(statusId, text);
    else showBanner(text);
  }
  MG.reportError = reportError;

  // ---- session --------------------------------------------------------------------------

  /* The sign-in form, with `message` as an error, or `notice` as news
   * ("Vous êtes déconnecté·e."). */
  function showSignIn(message, notice) {
    closeStream();
    if (startRetry.timer) { window.clearTimeout(startRetry.timer); startRetry.timer = null; }
    state.me = null;
    $('account').hidden = true;
    $('main-nav').hidden = true;
    document.querySelectorAll('.view').forEach(function (v) { v.hidden = v.id !== 'view-signin'; });
    var err = $('signin-error');
    if (message) { err.textContent = message; err.hidden = false; } else { err.textContent = ''; err.hidden = true; }
    var news = $('signin-notice');
    news.textContent = notice || '';
    news.hidden = !notice;
    $('token').value = '';
    state.view = 'signin';
    setTitle('Maillage — espace des chargé·e·s de mission');
    $('token').focus();
  }

  /* Called on any 401: back to the sign-in form, once. */
  function sessionLost() {
    if (!state.me) return;
    resetData();
    hideBanner();
    showSignIn(frenchError(401));
  }

  function resetData() {
    state.inbox = {items: [], byId: {}, nextCursor: null, loading: false, generation: state.inbox.generation + 1, loaded: false, catchUp: false};
    state.unseen = 0;
    state.matches = {};
    state.matchEpochs = {};
    state.detailShown = null;
    state.returnTo = '';
    state.stream.lastEventId = '';
    clear($('inbox-list'));
    clear($('collective-list'));
    clear($('match-detail'));
    // The next person on this computer starts with no filter: theirs would
    // hide part of the inbox without saying so. (Values set directly: a
    // form's reset() fires its handler, which would load the inbox.)
    ['inbox-filters', 'collective-filters', 'territory-filters'].forEach(function (id) {
      $(id).querySelectorAll('select').forEach(function (s) { s.value = ''; });
    });
    updateCounter();
    if (MG.territory) MG.territory.reset();
  }

  function signIn(ev) {
    ev.preventDefault();
    var input = $('token');
    var token = input.value.trim();
    var err = $('signin-error');
    err.hidden = true;
    if (!token) {
      err.textContent = 'Saisissez votre jeton d’accès.';
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    var button = $('signin-submit');
    button.disabled = true;
    button.textContent = 'Connexion…';
    api('POST', 'v1/session', {token: token}).then(function () {
      input.value = '';
      input.removeAttribute('aria-invalid');
      return start();
    }).catch(function (e) {
      err.textContent = e.status === 401 ? 'Ce jeton n’est pas reconnu (inconnu ou révoqué). Vérifiez-le, sans espace ni retour à la ligne.'
        : e.status === 403 ? 'Ce jeton n’ouvre pas cet espace\u00a0: il est réservé aux chargé·e·s de mission (pas aux réseaux émetteurs).'
        : e.message;
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }).then(function () {
      button.disabled = false;
      button.textContent = 'Se connecter';
    });
  }

  function signOut() {
    closeStream();
    api('DELETE', 'v1/session').catch(function () { /* the page forgets the session anyway */ }).then(function () {
      resetData();
      hideBanner();
      history.replaceState(null, '', location.pathname + location.search);
      showSignIn('', 'Vous êtes déconnecté·e.'); // seen
      announce('Vous êtes déconnecté·e.'); // heard
    });
  }

  /* After a sign-in or on load with a cookie: who am I, then the page. */
  var startRetry = {ms: 2000, timer: null};
  function start() {
    if (startRetry.timer) { window.clearTimeout(startRetry.timer); startRetry.timer = null; }
    return api('GET', 'v1/me').then(function (me) {
      startRetry.ms = 2000;
      if (!me || me.kind !== 'staff') {
        api('DELETE', 'v1/session').catch(function () {});
        showSignIn('Ce jeton est celui d’un réseau émetteur\u00a0: cet espace est réservé aux chargé·e·s de mission.');
        return;
      }
      state.me = me;
      $('who-name').textContent = me.name || me.id;
      $('account').hidden = false;
      $('main-nav').hidden = false;
      hideBanner();
      return loadTaxonomy().then(function () {
        openStream(function () { loadInbox(true); });
        route(true);
      });
    }, function (e) {
      if (e.status === 401) { showSignIn(''); return; }
      // The server or its Redis is unavailable: the session may well be
      // valid, so try again rather than ask for the token.
      var wait = startRetry.ms;
      startRetry.ms = Math.min(startRetry.ms * 2, 30000);
      showBanner('Maillage est momentanément indisponible\u00a0: nouvel essai automatique dans ' +
                 Math.round(wait / 1000) + '\u00a0s.');
      startRetry.timer = window.setTimeout(start, wait);
    }).catch(function (e) {
      // A 401 on the way already sent the page back to the sign-in form.
      if (e && e.status !== 401) showBanner(e.message || frenchError(0));
    });
  }

  // ---- taxonomy and filters ----------------------------------------------------

  function loadTaxonomy() {
    return api('GET', 'v1/taxonomy').then(function (t) {
      var tx = {categories: {}, departments: {}, networks: {}, categoryList: [], departmentList: []};
      ((t && t.categories) || []).forEach(function (c) {
        if (!c || !c.code) return;
        tx.categories[c.code] = c.label || c.code;
        tx.categoryList.push({code: c.code, label: c.label || c.code});
      });
      ((t && t.departments) || []).forEach(function (d) {
        if (!d || !d.code) return;
        tx.departments[d.code] = d.name || d.code;
        tx.departmentList.push({code: d.code, label: d.name || d.code});
      });
      ((t && t.networks) || []).forEach(function (n) {
        if (n && n.id && n.name) tx.networks[n.id] = n.name;
      });
      state.taxonomy = tx;
    }, function (e) {
      if (e.status === 401) throw e;
      reportError(e);
      var tx = {categories: {}, departments: {}, networks: {}, categoryList: [], departmentList: []};
      Object.keys(DEPARTMENTS).forEach(function (code) {
        tx.departments[code] = DEPARTMENTS[code];
        tx.departmentList.push({code: code, label: DEPARTMENTS[code]});
      });
      state.taxonomy = tx;
    }).then(function () {
      var mine = state.me && state.me.departments;
      fillSelect('f-department', state.taxonomy.departmentList, 'Tous', mine);
      fillSelect('c-department', state.taxonomy.departmentList, 'Tous', mine);
      fillSelect('t-department', state.taxonomy.departmentList, 'Toute la Normandie', mine);
      fillSelect('f-category', state.taxonomy.categoryList, 'Toutes');
      fillSelect('c-category', state.taxonomy.categoryList, 'Toutes');
      fillSelect('t-category', state.taxonomy.categoryList, 'Toutes');
    });
  }

  /* The options of select `id`: "all", then `list`; with `mine` (the codes
   * the member follows, some of them), those first under « Vos
   * départements », the others under « Autres départements ». */
  function fillSelect(id, list, allLabel, mine) {
    var select = $(id);
    var keep = select.value;
    clear(select);
    select.appendChild(el('option', {value: ''}, allLabel));
    function option(item) {
      var label = /^\d/.test(item.code) && item.label !== item.code ? item.label + ' (' + item.code + ')' : item.label;
      return el('option', {value: item.code}, label);
    }
    var own = list.filter(function (item) { return mine && mine.indexOf(item.code) >= 0; });
    if (own.length && own.length < list.length) {
      select.appendChild(el('optgroup', {label: 'Vos départements'}, own.map(option)));
      select.appendChild(el('optgroup', {label: 'Autres départements'},
        list.filter(function (item) { return own.indexOf(item) < 0; }).map(option)));
    } else {
      list.forEach(function (item) { select.appendChild(option(item)); });
    }
    select.value = keep;
  }

  MG.categoryLabel = function (c) { return categoryLabel(c); };
  MG.departmentName = function (c) { return departmentName(c); };

  function inboxFilters() {
    return {
      department: $('f-department').value,
      category: $('f-category').value,
      status: $('f-status').value,
      kind: $('f-kind').value
    };
  }

  /* Whether a notification (from the stream) passes the current filters. */
  function passesFilters(n) {
    var f = inboxFilters();
    // A cooperation concerns other departments too (as the server filters).
    if (f.department && n.department !== f.department && (n.otherDepartments || []).indexOf(f.department) < 0) return false;
    if (f.category && n.category !== f.category) return false;
    if (f.kind && n.kind !== f.kind) return false;
    // A follow-up status belongs to matches only (as the server filters).
    if (f.status && (n.kind !== 'match' || (n.status || 'new') !== f.status)) return false;
    return true;
  }

  // ---- the inbox -------------------------------------------------------------------

  /* Loads a page of the inbox (the first one if `reset`). `empty`: filtered
   * pages found empty in a row so far (see below). */
  function loadInbox(reset, empty) {
    var inbox = state.inbox;
    if (reset) {
      inbox.generation++;
      inbox.items = [];
      inbox.byId = {};
      inbox.nextCursor = null;
      clear($('inbox-list'));
      $('inbox-more').hidden = true;
      // The list is drawn again without its "new" marks: so is the counter.
      state.unseen = 0;
      updateCounter();
    }
    var generation = inbox.generation;
    var params = inboxFilters();
    params.limit = 50;
    if (!reset && inbox.nextCursor) params.cursor = inbox.nextCursor;
    // A page goes below the cards shown (live ones go above them).
    var lastBefore = inbox.items.length ? inbox.items[inbox.items.length - 1] : null;
    inbox.loading = true;
    setStatus('inbox-status', 'Chargement des opportunités…');
    $('inbox-list').setAttribute('aria-busy', 'true');
    return api('GET', 'v1/staff/me/inbox' + qs(params)).then(function (page) {
      if (generation !== state.inbox.generation) return; // filters changed meanwhile
      var items = (page && page.items) || [];
      items.forEach(function (n) { addItem(n, false); });
      inbox.nextCursor = page && page.nextCursor ? page.nextCursor : null;
      // With filters the gateway examines a bounded number of entries per
      // page, and may answer none with more to look at: look further
      // before saying nothing matches (20 pages at most: "Afficher plus"
      // goes on).
      if (!items.length && inbox.nextCursor && params.cursor !== inbox.nextCursor && (empty || 0) < 20)
        return loadInbox(false, (empty || 0) + 1);
      var more = $('inbox-more');
      var hadFocus = document.activeElement === more;
      more.hidden = !inbox.nextCursor;
      inbox.loaded = true;
      updateInboxStatus();
      // The last page hides the button that had the focus: it goes on to
      // the first card loaded (else to the status line), not to the page's top.
      if (hadFocus && more.hidden) focusAfter(lastBefore);
      if (inbox.catchUp) { inbox.catchUp = false; catchUpInbox(); }
    }).catch(function (e) {
      if (generation !== state.inbox.generation) return;
      reportError(e, 'inbox-status');
    }).then(function () {
      inbox.loading = false;
      $('inbox-list').removeAttribute('aria-busy');
    });
  }

  /* Focuses the first card after `item` (the first card if null): its
   * first button or link; the list's status line if there is none. */
  function focusAfter(item) {
    var items = state.inbox.items;
    var next = items[item ? items.indexOf(item) + 1 : 0];
    var target = next && Array.prototype.filter.call(next.node.querySelectorAll('button, a, summary'),
      function (x) { return x.offsetParent !== null; })[0]; // not in a hidden part
    (target || $('inbox-status')).focus();
  }

  function updateInboxStatus() {
    var n = state.inbox.items.length;
    var f = inboxFilters();
    var filtered = f.department || f.category || f.status || f.kind;
    var text;
    if (n === 0) {
      text = filtered ? 'Aucune opportunité ne correspond à ces filtres.' : 'Aucune opportunité pour le moment. Les nouvelles apparaîtront ici.';
    } else {
      text = n === 1 ? '1 opportunité affichée' : formatNumber(n) + ' opportunités affichées';
      if (state.inbox.nextCursor) text += ' (d’autres sont disponibles plus bas)';
      text += '.';
    }
    setStatus('inbox-status', text);
  }

  /* Adds a notification to the list, once per id; `live` marks it new.
   * A live one, or one that is `sorted` (the catch-up's, new or read
   * elsewhere), goes in its place by date; a page's, at the bottom. */
  function addItem(n, live, sorted) {
    if (!n || !n.id) return;
    var inbox = state.inbox;
    var existing = inbox.byId[n.id];
    if (existing) {
      // A resumed stream may repeat an entry already shown: keep the page's own state.
      return;
    }
    var item = {n: n, node: null, live: live};
    item.node = renderItem(item);
    inbox.byId[n.id] = item;
    // Newest first: find the first shown item older than this one.
    var t = Date.parse(n.createdAt) || 0;
    var index = inbox.items.length;
    if (live || sorted) {
      for (var i = 0; i < inbox.items.length; i++) {
        if ((Date.parse(inbox.items[i].n.createdAt) || 0) <= t) { index = i; break; }
      }
    }
    var list = $('inbox-list');
    if (index >= inbox.items.length) list.appendChild(item.node);
    else list.insertBefore(item.node, inbox.items[index].node);
    inbox.items.splice(index, 0, item);
    if (n.kind === 'match' && n.matchId) loadMatchReason(item);
  }

  /* A card's line under its title: the notifier's summary, but for a match
   * "need (structure, commune) ↔ offer (structure, commune)" without the
   * explanation that follows it (the card's « Pourquoi » says it, or why
   * the match was retired). */
  function cardSummary(n) {
    var summary = n.summary || '';
    var arrow = n.kind === 'match' ? summary.indexOf(' ↔ ') : -1;
    var end = arrow < 0 ? -1 : summary.indexOf(') : ', arrow);
    return end < 0 ? summary : summary.slice(0, end + 1);
  }

  function itemStatus(item) {
    return item.n.status || 'new';
  }

  var itemCounter = 0;

  function renderItem(item) {
    var n = item.n;
    var uid = 'n' + (++itemCounter);
    var kindLabel = KINDS[n.kind] || 'Notification';
    var article = el('article', {class: 'card card-' + (KINDS[n.kind] ? n.kind : 'other'), 'aria-labelledby': uid + '-title'});
    var li = el('li', {class: 'card-item'}, article);
    li.dataset.nid = n.id;
    if (n.matchId) li.dataset.matchId = n.matchId;
    if (item.live) li.classList.add('is-live');

    var kindBadge = el('span', {class: 'badge badge-kind'}, kindLabel);
    var badges = el('p', {class: 'badges'}, kindBadge);
    var newBadge = el('span', {class: 'badge badge-new'}, item.live ? 'Nouvelle' : 'Non lue');
    badges.appendChild(newBadge);
    var retiredBadge = el('span', {class: 'badge badge-retired'}, 'Mise en relation retirée');
    badges.appendChild(retiredBadge);
    var statusBadge = el('span', {class: 'badge badge-status'});
    badges.appendChild(statusBadge);
    article.appendChild(badges);

    item.title = el('h2', {class: 'card-title', id: uid + '-title'}, n.title || kindLabel);
    article.appendChild(item.title);

    var meta = el('ul', {class: 'meta', 'aria-label': 'Caractéristiques'});
    var when = formatDate(n.createdAt);
    if (when) meta.appendChild(el('li', null, el('time', {datetime: n.createdAt}, when)));
    if (n.category) meta.appendChild(el('li', null, n.categoryLabel || categoryLabel(n.category)));
    if (n.department) meta.appendChild(el('li', null, n.departmentName || departmentName(n.department)));
    if (n.communeName) meta.appendChild(el('li', null, n.communeName));
    var pct = percent(n.score);
    if (pct && n.kind === 'match') meta.appendChild(item.scoreItem = el('li', null, 'Score ' + pct));
    if (meta.firstChild) article.appendChild(meta);

    item.summary = el('p', {class: 'summary'}, cardSummary(n));
    item.summary.hidden = !n.summary;
    article.appendChild(item.summary);

    var reason = el('p', {class: 'reason'});
    reason.hidden = true;
    article.appendChild(reason);

    if (n.text) {
      var det = el('details', {class: 'full-text'}, el('summary', null, 'Message complet'),
        el('p', {class: 'pre'}, n.text));
      article.appendChild(det);
    }

    var actions = el('div', {class: 'actions'});
    var result = el('p', {class: 'result', role: 'status'});
    item.result = result;
    item.statusBadge = statusBadge;
    item.newBadge = newBadge;
    item.kindBadge = kindBadge;
    item.retiredBadge = retiredBadge;
    item.reason = reason;
    item.buttons = {};

    var comment = null;
    if (n.kind === 'match' && n.matchId) {
      var group = el('div', {class: 'feedback', role: 'group', 'aria-label': 'Suite donnée à cette mise en relation'});
      ['contact_made', 'not_relevant'].forEach(function (outcome) {
        var b = el('button', {type: 'button', class: 'button ' + (outcome === 'contact_made' ? 'button-primary' : 'button-secondary'),
          'aria-pressed': 'false', 'data-outcome': outcome, 'aria-describedby': uid + '-title'}, STATUS[outcome]);
        b.addEventListener('click', function () { sendFeedback(item, outcome); });
        item.buttons[outcome] = b;
        group.appendChild(b);
      });
      item.feedback = group;
      actions.appendChild(group);
      var commentId = uid + '-comment';
      comment = el('details', {class: 'comment'},
        el('summary', null, 'Ajouter un commentaire'),
        el('label', {for: commentId}, 'Commentaire (facultatif, joint à votre prochain choix)'),
        el('textarea', {id: commentId, rows: '2', maxlength: '500'}));
      item.comment = comment.querySelector('textarea');
      item.commentBox = comment;
      actions.appendChild(el('a', {class: 'detail-link', href: '#match/' + encodeURIComponent(n.matchId)},
        'Voir le détail', el('span', {class: 'visually-hidden'}, '\u00a0: ' + (n.title || kindLabel))));
    } else if (n.kind === 'collective_need') {
      var one = /#(collective\/.+)$/.exec(String(n.link || '')); // this one among them
      actions.appendChild(el('a', {class: 'detail-link', href: one ? '#' + one[1] : '#collectifs'}, 'Voir ce besoin collectif'));
    } else if (detailHash(n.link)) { // a need, a structure, a cooperation proposal
      actions.appendChild(el('a', {class: 'detail-link', href: detailHash(n.link)},
        'Voir le détail', el('span', {class: 'visually-hidden'}, '\u00a0: ' + (n.title || kindLabel))));
    }
    if (n.read === false) {
      var read = el('button', {type: 'button', class: 'button button-quiet', 'aria-describedby': uid + '-title'}, 'Marquer comme lue');
      read.addEventListener('click', function () { markRead(item, true); });
      item.readButton = read;
      actions.appendChild(read);
    }
    if (comment) actions.appendChild(comment); // on its own line, last
    article.appendChild(actions);
    article.appendChild(result);
    item.node = li;
    refreshItem(item);
    return li;
  }

  function refreshItem(item) {
    // A retired match (its need closed, its offer withdrawn...) asks for
    // nothing more: a muted card that says so first, no "Non lu", no
    // feedback to give.
    var retired = item.n.kind === 'match' && item.n.retired === true;
    item.node.classList.toggle('is-retired', retired);
    // Its title was the message's, "Mise en relation proposée : …".
    var title = item.n.title || '';
    var proposed = 'Mise en relation proposée';
    if (retired && title.indexOf(proposed) === 0) item.title.textContent = 'Mise en relation retirée' + title.slice(proposed.length);
    item.kindBadge.hidden = retired;
    item.retiredBadge.hidden = !retired;
    item.newBadge.hidden = retired || !(item.live || item.n.read === false);
    if (item.feedback) item.feedback.hidden = retired;
    if (item.commentBox) item.commentBox.hidden = retired;
    var status = itemStatus(item);
    item.statusBadge.textContent = STATUS[status] || '';
    item.statusBadge.hidden = item.n.kind !== 'match' || status === 'new';
    item.statusBadge.className = 'badge badge-status status-' + (STATUS[status] ? status : 'new');
    Object.keys(item.buttons).forEach(function (outcome) {
      item.buttons[outcome].setAttribute('aria-pressed', outcome === status ? 'true' : 'false');
    });
  }

  function setReason(item, match) {
    if (!match) return;
    var hinted = item.hinted;
    item.hinted = false;
    if (typeof match.retired === 'boolean' && match.retired !== (item.n.retired === true)) {
      // The buttons about to hide may hold the focus: it goes to the card's link.
      var focused = match.retired && item.node.contains(document.activeElement) &&
        ((item.feedback && item.feedback.contains(document.activeElement)) ||
         (item.commentBox && item.commentBox.contains(document.activeElement)));
      item.n.retired = match.retired; // the match as it is now, maybe retired since the inbox was read
      refreshItem(item);
      if (focused) {
        var link = item.node.querySelector('a.detail-link');
        if (link) link.focus();
      }
      if (hinted && match.retired) announce('Mise en relation retirée\u00a0: ' + (item.n.title || ''));
    }
    // The score as it is now (a revision moves it), not as notified.
    if (item.scoreItem && typeof match.score === 'number' && !item.n.retired && percent(match.score)) {
      item.scoreItem.textContent = 'Score ' + percent(match.score);
    }
    if (!match.explanation) return;
    var r = item.reason;
    clear(r);
    // A retirement's explanation says why itself ("Mise en relation retirée : …").
    if (!item.n.retired) r.appendChild(el('strong', null, 'Pourquoi\u00a0: '));
    r.appendChild(document.createTextNode(match.explanation));
    r.hidden = false;
    if (match.status && STATUS[match.status] && !item.feedbackSent) {
      item.n.status = match.status;
      refreshItem(item);
    }
  }

  /* The match's explanation (the reason shown on the card). A few requests
   * at a time, so a page of 50 matches does not flood the gateway. */
  var reasonQueue = [];
  var reasonActive = 0;
  function loadMatchReason(item) {
    var mid = item.n.matchId;
    if (state.matches[mid]) { setReason(item, state.matches[mid]); return; }
    // Until the details arrive: the explanation line of the message, if any
    // (not for a retired match: it no longer holds).
    var m = /(?:^|\n)Pourquoi : ([^\n]+)/.exec(item.n.text || '');
    if (m && !item.n.retired) setReason(item, {explanation: m[1]});
    reasonQueue.push(item);
    pumpReasons();
  }

  function pumpReasons() {
    while (reasonActive < 4 && reasonQueue.length) {
      var item = reasonQueue.shift();
      if (!state.inbox.byId[item.n.id]) continue; // gone after a filter change
      reasonActive++;
      (function (it) {
        fetchMatch(it.n.matchId).then(function (match) {
          setReason(it, match);
        }, function (e) {
          if (e.status === 401) return;
          // The card still shows the notification's summary; nothing else to do.
        }).then(function () {
          reasonActive--;
          pumpReasons();
        });
      })(item);
    }
  }

  /* The match, from the cache or the gateway. An answer that left before
   * the stream said the match changed may hold the old revision: it is
   * asked for again, so a caller never gets a match older than the hint. */
  function fetchMatch(mid) {
    if (state.matches[mid]) return Promise.resolve(state.matches[mid]);
    var epoch = state.matchEpochs[mid] || 0;
    return api('GET', 'v1/matches/' + encodeURIComponent(mid)).then(function (m) {
      if ((state.matchEpochs[mid] || 0) !== epoch) return fetchMatch(mid);
      if (m) state.matches[mid] = m;
      return m;
    });
  }

  // ---- matches that change while shown (the stream's `match` hints) -------------

  function forgetMatch(mid) {
    delete state.matches[mid];
    state.matchEpochs[mid] = (state.matchEpochs[mid] || 0) + 1;
  }

  function queueReason(item) {
    item.hinted = true;
    if (reasonQueue.indexOf(item) < 0) reasonQueue.push(item);
    pumpReasons();
  }

  /* A match retired (its need closed, its offer withdrawn...) or revised
   * since the page read it: the cards showing it, and its detail if open,
   * fetch it again; a retired one turns into « Mise en relation retirée ». */
  function matchChanged(mid) {
    forgetMatch(mid);
    state.inbox.items.forEach(function (it) {
      if (it.n.kind === 'match' && it.n.matchId === mid) queueReason(it);
    });
    if (state.view === 'match' && $('match-detail').dataset.matchId === mid) refreshDetail(mid);
  }

  /* Hints may have been lost (the stream was cut, or the gateway's channel):
   * every match shown is fetched again. */
  function refreshShownMatches() {
    var shown = state.inbox.items.filter(function (it) { return it.n.kind === 'match' && it.n.matchId; });
    var mids = {};
    Object.keys(state.matches).forEach(function (mid) { mids[mid] = true; });
    shown.forEach(function (it) { mids[it.n.matchId] = true; });
    Object.keys(mids).forEach(function (mid) { forgetMatch(mid); });
    shown.forEach(queueReason);
    var root = $('match-detail');
    if (state.view === 'match' && root.dataset.matchId) refreshDetail(root.dataset.matchId);
  }

  function sendFeedback(item, outcome) {
    if (item.pending) return;
    item.pending = true;
    var mid = item.n.matchId;
    var buttons = item.buttons;
    Object.keys(buttons).forEach(function (k) { buttons[k].setAttribute('aria-disabled', 'true'); });
    item.result.className = 'result';
    item.result.textContent = 'Enregistrement en cours…';
    var body = {outcome: OUTCOMES[outcome], comment: item.comment ? plainComment(item.comment.value) : ''};
    api('POST', 'v1/matches/' + encodeURIComponent(mid) + '/feedback', body).then(function () {
      item.n.status = outcome;
      item.feedbackSent = true;
      if (state.matches[mid]) state.matches[mid].status = outcome;
      if (body.comment && state.matches[mid]) state.matches[mid].comment = body.comment;
      refreshItem(item);
      item.result.className = 'result result-ok';
      item.result.textContent = 'Enregistré à ' + formatTime(new Date()) + '\u00a0: «\u00a0' + STATUS[outcome] + '\u00a0»' +
        (body.comment ? ', avec votre commentaire (dans le détail).' : '.');
      if (item.comment) item.comment.value = '';
      if (item.n.read === false) markRead(item, false);
      syncDetailButtons(mid, outcome);
    }, function (e) {
      if (e.status === 401) return;
      item.result.className = 'result result-error';
      item.result.textContent = 'Non enregistré\u00a0: ' + e.message;
    }).then(function () {
      item.pending = false;
      Object.keys(buttons).forEach(function (k) { buttons[k].removeAttribute('aria-disabled'); });
    });
  }

  function markRead(item, explicit) {
    var staff = 'me';
    return api('POST', 'v1/staff/' + staff + '/inbox/' + encodeURIComponent(item.n.id) + '/read', {}).then(function () {
      item.n.read = true;
      item.newBadge.hidden = true;
      var node = item.node;
      node.classList.remove('is-live');
      if (item.readButton) {
        var hadFocus = document.activeElement === item.readButton;
        item.readButton.remove();
        item.readButton = null;
        if (hadFocus) {
          var first = node.querySelector('button, a, summary');
          if (first) first.focus();
        }
      }
      if (item.live) { item.live = false; state.unseen = Math.max(0, state.unseen - 1); updateCounter(); }
      if (explicit) announce('Marquée comme lue.');
    }, function (e) {
      if (explicit) reportError(e);
    });
  }

  /* The tab's title: the view's or the item's, after the number of new
   * arrivals, « (2) Mes opportunités — Maillage », seen in the tab bar when
   * the page is scrolled down or in the background, as the counter of the
   * menu is not. */
  function setTitle(title) {
    state.title = title;
    document.title = (state.unseen > 0 ? '(' + state.unseen + ') ' : '') + title;
  }

  function updateCounter() {
    if (state.title) setTitle(state.title);
    var c = $('new-counter');
    if (state.unseen > 0) {
      // The number shows; the word is for screen readers (the menu stays on one line on a phone).
      clear(c);
      c.appendChild(document.createTextNode(String(state.unseen)));
      c.appendChild(el('span', {class: 'visually-hidden'}, state.unseen === 1 ? ' nouvelle' : ' nouvelles'));
      c.hidden = false;
    } else {
      c.textContent = '';
      c.hidden = true;
    }
  }

  // ---- the live stream --------------------------------------------------------

  function setLive(s) {
    var p = $('live-state');
    p.dataset.state = s;
    $('live-text').textContent = s === 'on' ? 'En direct' : s === 'connecting' ? 'Connexion au direct…'
      : s === 'full' ? 'Trop d’onglets en direct\u00a0: fermez-en un'
      : 'Direct interrompu, nouvel essai…';
  }

  /* EventSource reconnects by itself after a network error and sends
   * Last-Event-ID. It gives up on an HTTP error (a 401, a 503): then the
   * page checks the session and reopens with ?lastEventId= after a pause. */
  function openStream(onFirstOpen) {
    closeStream();
    if (typeof window.EventSource !== 'function') {
      setLive('off');
      if (onFirstOpen) onFirstOpen();
      return;
    }
    var s = state.stream;
    if (onFirstOpen) {
      var once = false;
      s.onFirstOpen = function () {
        if (once) return;
        once = true;
        onFirstOpen();
      };
      // The inbox loads even if the stream cannot open.
      window.setTimeout(function () { if (s.onFirstOpen) s.onFirstOpen(); }, 4000);
    }
    // Without a position the stream starts at the newest entry: if the
    // inbox was read before (the 4 s fallback, or a stream that never got
    // its position), entries written in between are fetched on opening.
    var hadPosition = !!s.lastEventId;
    var url = 'v1/stream' + (s.lastEventId ? qs({lastEventId: s.lastEventId}) : '');
    var es = new EventSource(url);
    s.es = es;
    setLive('connecting');
    // The first opening of a fresh start loads the inbox; any other (after a
    // cut, or an inbox loaded before the stream opened) lost the hints sent
    // meanwhile, so the matches shown are fetched again.
    var loadsInbox = !!onFirstOpen;
    es.addEventListener('open', function () {
      s.retryMs = 2000;
      setLive('on');
      if (!loadsInbox || state.inbox.loaded) refreshShownMatches();
      if (!hadPosition) {
        // Still loading: once loaded (what it read is not new).
        if (state.inbox.loading) state.inbox.catchUp = true;
        else if (state.inbox.loaded) catchUpInbox();
      }
      loadsInbox = false;
      if (s.onFirstOpen) s.onFirstOpen();
    });
    // Where the stream starts (sent before any notification): resuming from
    // it after a cut loses nothing that arrived meanwhile.
    es.addEventListener('position', function (ev) {
      if (ev.lastEventId) { s.lastEventId = ev.lastEventId; hadPosition = true; }
    });
    es.addEventListener('notification', function (ev) {
      if (ev.lastEventId) { s.lastEventId = ev.lastEventId; hadPosition = true; }
      var n;
      try { n = JSON.parse(ev.data); } catch (e) { return; }
      onLiveNotification(n);
    });
    // A hint, with no id (the position stays the inbox's) and never
    // replayed: a match was retired or revised ({"matchId": ...}), or any
    // may have been ({"all": true}).
    es.addEventListener('match', function (ev) {
      if (s.es !== es) return;
      var d;
      try { d = JSON.parse(ev.data); } catch (e) { return; }
      if (d && d.all === true) refreshShownMatches();
      else if (d && typeof d.matchId === 'string' && d.matchId) matchChanged(d.matchId);
    });
    es.addEventListener('error', function () {
      if (s.es !== es) return;
      if (s.onFirstOpen) s.onFirstOpen();
      if (es.readyState === EventSource.CLOSED) {
        setLive('lost');
        es.close();
        s.es = null;
        // EventSource does not say why it gave up; a HEAD of the stream
        // does: 429 when this staff member has too many live tabs
        // ([gateway] stream_max_per_staff).
        window.fetch('v1/stream', {method: 'HEAD', credentials: 'same-origin', cache: 'no-store'}).then(function (r) {
          if (r.status === 429 && !s.es && state.me) setLive('full');
        }, function () {});
        scheduleReopen();
      } else {
        setLive('connecting');
      }
    });
  }

  function scheduleReopen() {
    var s = state.stream;
    if (s.retryTimer) return;
    var wait = s.retryMs;
    s.retryMs = Math.min(s.retryMs * 2, 30000);
    s.retryTimer = window.setTimeout(function () {
      s.retryTimer = null;
      if (!state.me) return;
      // A 401 here ends the session (sessionLost); anything else: try again.
      api('GET', 'v1/me').then(function () {
        if (state.me) openStream(null);
      }, function (e) {
        if (e.status !== 401 && state.me) scheduleReopen();
      });
    }, wait);
  }

  function closeStream() {
    var s = state.stream;
    if (s.retryTimer) { window.clearTimeout(s.retryTimer); s.retryTimer = null; }
    s.onFirstOpen = null;
    if (s.es) { s.es.close(); s.es = null; }
    setLive('off');
    var t = $('live-text');
    if (t) t.textContent = 'Hors ligne';
  }

  /* The newest entries again: those not shown yet are added, as new if
   * unread (read elsewhere meanwhile: not new), and announced once. */
  function catchUpInbox() {
    var generation = state.inbox.generation;
    var added = 0;
    // Newest first, page after page while a whole page is new (20 at most):
    // as many entries as were written meanwhile, not only the newest 50.
    function page(cursor, left) {
      var params = inboxFilters();
      params.limit = 50;
      if (cursor) params.cursor = cursor;
      return api('GET', 'v1/staff/me/inbox' + qs(params)).then(function (data) {
        if (generation !== state.inbox.generation) return;
        var known = false;
        ((data && data.items) || []).forEach(function (n) {
          if (!n || !n.id) return;
          if (state.inbox.byId[n.id]) { known = true; return; }
          addItem(n, !n.read, true);
          if (!n.read) added++;
        });
        var next = data && data.nextCursor;
        if (!known && next && next !== cursor && left > 1) return page(next, left - 1);
      });
    }
    page(null, 20).then(function () {
      if (generation !== state.inbox.generation || !added) return;
      state.unseen += added;
      updateCounter();
      updateInboxStatus();
      announce(added === 1 ? 'Nouvelle opportunité reçue.' : added + ' nouvelles opportunités reçues.');
    }).catch(function () {});
  }

  function onLiveNotification(n) {
    if (!n || !n.id || state.inbox.byId[n.id]) return;
    if (!passesFilters(n)) {
      announce('Nouvelle opportunité reçue (masquée par vos filtres)\u00a0: ' + (n.title || ''));
      return;
    }
    addItem(n, true);
    state.unseen++;
    updateCounter();
    updateInboxStatus();
    announce('Nouvelle opportunité\u00a0: ' + (n.title || KINDS[n.kind] || 'notification'));
  }

  // ---- one match in detail (#match/<id>) --------------------------------------

  function syncDetailButtons(mid, outcome) {
    var root = $('match-detail');
    if (root.dataset.matchId !== mid) return;
    var dd = root.querySelector('dd[data-field="status"]');
    if (dd) dd.textContent = STATUS[outcome];
    root.querySelectorAll('button[data-outcome]').forEach(function (b) {
      b.setAttribute('aria-pressed', b.dataset.outcome === outcome ? 'true' : 'false');
    });
  }

  function showMatch(mid) {
    var root = $('match-detail');
    clear(root);
    root.dataset.matchId = mid;
    setStatus('match-status', 'Chargement…');
    $('match-title').textContent = 'Mise en relation proposée';
    delete state.matches[mid]; // fresh status and revision
    state.detailShown = null;
    fetchMatch(mid).then(function (m) {
      if (root.dataset.matchId !== mid) return;
      setStatus('match-status', '');
      if (m.retired) $('match-title').textContent = 'Mise en relation retirée';
      renderMatch(root, m);
      state.detailShown = {id: mid, retired: m.retired === true, revision: m.revision};
    }, function (e) {
      if (root.dataset.matchId !== mid) return;
      if (e.status === 404) $('match-title').textContent = 'Mise en relation introuvable';
      reportError(e, 'match-status');
    });
  }

  /* The open detail of a match that changed: drawn again if it was retired
   * (or proposed again) or revised since it was drawn. */
  function refreshDetail(mid) {
    var root = $('match-detail');
    fetchMatch(mid).then(function (m) {
      var shown = state.detailShown;
      if (!m || state.view !== 'match' || root.dataset.matchId !== mid || !shown || shown.id !== mid) return;
      if (shown.retired === (m.retired === true) && shown.revision === m.revision) return;
      var hadFocus = root.contains(document.activeElement);
      clear(root);
      $('match-title').textContent = m.retired ? 'Mise en relation retirée' : 'Mise en relation proposée';
      renderMatch(root, m);
      state.detailShown = {id: mid, retired: m.retired === true, revision: m.revision};
      if (hadFocus) $('match-title').focus();
      if (m.retired && !shown.retired) announce('Cette mise en relation a été retirée.');
    }, function () {
      // The detail stays as it was drawn; a reload shows it as it is.
    });
  }

  function definition(dl, term, value, field) {
    if (value === '' || value === null || value === undefined) return;
    dl.appendChild(el('dt', null, term));
    dl.appendChild(el('dd', field ? {'data-field': field} : null, value));
  }

  function renderMatch(root, m) {
    var head = el('dl', {class: 'facts'});
    definition(head, 'Catégorie', categoryLabel(m.category));
    definition(head, 'Département', departmentName(m.department));
    definition(head, 'Score', percent(m.score));
    definition(head, 'Rang', rankText(m.rank), 'rank');
    definition(head, 'Distance', distanceText(m.distanceKm), 'distance');
    definition(head, 'Proposée le', formatDate(m.proposedAt));
    if (!m.retired) definition(head, 'Suite donnée', STATUS[m.status || 'new'], 'status'); // nothing left to do
    definition(head, 'Votre commentaire', m.comment, 'comment');
    if (m.retired) definition(head, 'État', 'Retirée\u00a0: cette mise en relation n’est plus proposée');
    root.appendChild(head);
    // A retirement's explanation says why itself ("Mise en relation retirée : …").
    if (m.explanation) root.appendChild(el('p', {class: 'reason'}, m.retired ? null : el('strong', null, 'Pourquoi\u00a0: '), m.explanation));

    var comps = (m.found && m.found.components) || (m.components && Array.isArray(m.components) ? m.components : null);
    if (comps && comps.length) {
      // On a phone the rows are stacked (style.css): the roles keep it a
      // table for screen readers, each cell says its column's name.
      var table = el('table', {class: 'data components', role: 'table'},
        el('caption', null, 'Composantes du score'),
        el('thead', {role: 'rowgroup'}, el('tr', {role: 'row'},
          ['Critère', 'Valeur', 'Poids', 'Détail'].map(function (name) {
            return el('th', {scope: 'col', role: 'columnheader'}, name);
          }))));
      var tbody = el('tbody', {role: 'rowgroup'});
      comps.forEach(function (c) {
        tbody.appendChild(el('tr', {role: 'row'}, el('th', {scope: 'row', role: 'rowheader'}, COMPONENTS[c.name] || c.name || ''),
          el('td', {role: 'cell', 'data-label': 'Valeur'}, percent(c.value || 0)),
          el('td', {role: 'cell', 'data-label': 'Poids'}, percent(c.weight || 0)),
          el('td', {role: 'cell', 'data-label': 'Détail'}, c.detail || COMPONENT_HINTS[c.name] || '')));
      });
      table.appendChild(tbody);
      root.appendChild(el('div', {class: 'table-scroll'}, table));
    }

    // A retired match takes no feedback: the pair is no longer proposed.
    if (!m.retired) renderFeedback(root, m);

    var sides = el('div', {class: 'sides'});
    root.appendChild(sides);
    sides.appendChild(sidePanel('Le besoin', 'need', m.needId, m.needStructureId));
    sides.appendChild(sidePanel('L’offre', 'offer', m.offerId, m.offerStructureId));
  }

  /* The feedback buttons of a match's detail, and where their result shows.
   * As on a card: one request at a time; once recorded, every card of the
   * match says so and is marked read. */
  function renderFeedback(root, m) {
    var group = el('div', {class: 'feedback', role: 'group', 'aria-label': 'Suite donnée à cette mise en relation'});
    var result = el('p', {class: 'result', role: 'status'});
    var commentId = 'match-comment';
    var comment = el('textarea', {id: commentId, rows: '2', maxlength: '500'});
    var buttons = [];
    var pending = false;
    ['contact_made', 'not_relevant'].forEach(function (outcome) {
      var b = el('button', {type: 'button', class: 'button ' + (outcome === 'contact_made' ? 'button-primary' : 'button-secondary'),
        'aria-pressed': (m.status || 'new') === outcome ? 'true' : 'false', 'data-outcome': outcome}, STATUS[outcome]);
      b.addEventListener('click', function () {
        if (pending) return;
        pending = true;
        buttons.forEach(function (x) { x.setAttribute('aria-disabled', 'true'); });
        result.className = 'result';
        result.textContent = 'Enregistrement en cours…';
        var said = plainComment(comment.value);
        api('POST', 'v1/matches/' + encodeURIComponent(m.id) + '/feedback', {outcome: OUTCOMES[outcome], comment: said}).then(function () {
          m.status = outcome;
          if (state.matches[m.id]) state.matches[m.id].status = outcome;
          if (said) {
            m.comment = said;
            if (state.matches[m.id]) state.matches[m.id].comment = said;
            showComment(root, said);
            comment.value = '';
          }
          syncDetailButtons(m.id, outcome);
          result.className = 'result result-ok';
          result.textContent = 'Enregistré à ' + formatTime(new Date()) + '\u00a0: «\u00a0' + STATUS[outcome] + '\u00a0»' +
            (said ? ', avec votre commentaire.' : '.');
          itemsOfMatch(m.id).forEach(function (item) {
            item.n.status = outcome;
            item.feedbackSent = true;
            refreshItem(item);
            if (item.n.read === false) markRead(item, false);
          });
        }, function (e) {
          if (e.status === 401) return;
          result.className = 'result result-error';
          result.textContent = 'Non enregistré\u00a0: ' + e.message;
        }).then(function () {
          pending = false;
          buttons.forEach(function (x) { x.removeAttribute('aria-disabled'); });
        });
      });
      buttons.push(b);
      group.appendChild(b);
    });
    root.appendChild(el('div', {class: 'actions'}, group,
      el('div', {class: 'comment'}, el('label', {for: commentId}, 'Commentaire (facultatif, joint à votre choix)'), comment)));
    root.appendChild(result);
  }

  /* The comment of a match's detail, in its facts (added when it had none). */
  function showComment(root, text) {
    var dd = root.querySelector('dd[data-field="comment"]');
    if (dd) { dd.textContent = text; return; }
    definition(root.querySelector('dl.facts'), 'Votre commentaire', text, 'comment');
  }

  /* The inbox's cards of a match (a match may be notified more than once). */
  function itemsOfMatch(mid) {
    return state.inbox.items.filter(function (it) { return it.n.matchId === mid; });
  }

  /* A link to a structure's view, named (its id when the name is unknown). */
  function structureLink(sid, name) {
    return el('a', {href: '#structure/' + encodeURIComponent(sid)}, name || sid);
  }

  /* The facts of a need or an offer (GET /v1/needs/{id}, /v1/offers/{id}),
   * with its structure when `withStructure`. */
  function itemFacts(x, withStructure, isOffer) {
    var dl = el('dl', {class: 'facts'});
    if (withStructure && x.structureId) definition(dl, 'Structure', structureLink(x.structureId, x.structureName), 'structure');
    definition(dl, 'Catégorie', categoryLabel(x.category));
    definition(dl, 'Commune', x.communeName ? x.communeName + (x.department ? ' (' + x.department + ')' : '') : x.commune, 'commune');
    // An offer serves its territory, or a radius around its commune (either reaches).
    if (x.territoryNames && x.territoryNames.length) definition(dl, 'Territoire desservi', x.territoryNames.join(', '), 'territory');
    if (x.radiusKm) definition(dl, 'Rayon', formatNumber(x.radiusKm) + '\u00a0km', 'radius');
    definition(dl, 'Quantité', x.quantity);
    definition(dl, 'Capacité', x.capacity);
    definition(dl, 'Reçu le', formatDate(x.receivedAt));
    definition(dl, 'Valable à partir du', formatDay(x.validFrom));
    definition(dl, 'Valable jusqu’au', formatDay(x.validUntil));
    // « besoin clos », « offre retirée », as the journal says them
    definition(dl, 'État', isOffer ? (x.open === false ? 'Retirée' : 'Ouverte') : (x.open === false ? 'Clos' : 'Ouvert'));
    return dl;
  }

  /* A structure's networks, each by its [networks] name, else, as the
   * notifier names it, as the member structure of that id (a link to it),
   * else by its id. */
  var structureNames = {}; // id -> promise of its name, or null
  function networksNode(ids) {
    if (!ids || !ids.length) return '';
    var span = el('span');
    ids.forEach(function (id, i) {
      if (i) span.appendChild(document.createTextNode(', '));
      var named = own(state.taxonomy.networks, id);
      var node = document.createTextNode(named || id);
      span.appendChild(node);
      if (named) return;
      if (!own(structureNames, id)) {
        structureNames[id] = api('GET', 'v1/structures/' + encodeURIComponent(id)).then(function (s) {
          return s && s.name ? s.name : null;
        }, function () { return null; });
      }
      structureNames[id].then(function (name) {
        if (name && node.parentNode === span) span.replaceChild(structureLink(id, name), node);
      });
    });
    return span;
  }

  /* The facts of a structure (GET /v1/structures/{id}): family, commune,
   * networks, and the contact to call. */
  function structureFacts(s) {
    var dl = el('dl', {class: 'facts'});
    definition(dl, 'Famille', FAMILIES[s.family] || '', 'family');
    definition(dl, 'Commune', s.communeName || s.commune, 'commune');
    definition(dl, 'Réseaux', networksNode(s.networks), 'networks');
    if (s.left) definition(dl, 'Statut', 'A quitté le réseau');
    var c = s.contact || {};
    if (c.name || c.email || c.phone) {
      definition(dl, 'Contact', [c.name, c.role].filter(Boolean).join(', '));
      if (c.email) definition(dl, 'Courriel', safeLink('mailto:' + c.email, c.email));
      if (c.phone) definition(dl, 'Téléphone', safeLink('tel:' + String(c.phone).replace(/[^+0-9]/g, ''), c.phone));
    }
    if (s.website) definition(dl, 'Site', safeLink(s.website, s.website));
    return dl;
  }

  /* A need or an offer, then its structure with the contact to call. */
  function sidePanel(title, kind, id, structureId) {
    var section = el('section', {class: 'panel side'}, el('h2', null, title));
    var body = el('div', null, el('p', {class: 'hint'}, 'Chargement…'));
    section.appendChild(body);
    api('GET', DETAILS[kind].path + encodeURIComponent(id)).then(function (x) {
      clear(body);
      // Its title opens its own view (its other matches, its whole record).
      body.appendChild(el('h3', null, el('a', {href: '#' + kind + '/' + encodeURIComponent(id)}, x.title || x.id)));
      if (x.description) body.appendChild(el('p', {class: 'pre'}, x.description));
      body.appendChild(itemFacts(x, false, kind === 'offer'));
    }, function (e) {
      if (e.status === 401) return;
      clear(body);
      body.appendChild(el('p', {class: 'result result-error'}, e.message));
    });
    if (structureId) {
      var sbody = el('div', {class: 'structure'}, el('p', {class: 'hint'}, 'Chargement de la structure…'));
      section.appendChild(sbody);
      api('GET', 'v1/structures/' + encodeURIComponent(structureId)).then(function (s) {
        clear(sbody);
        sbody.appendChild(el('h3', null, structureLink(structureId, s.name)));
        sbody.appendChild(structureFacts(s));
      }, function (e) {
        if (e.status === 401) return;
        clear(sbody);
        sbody.appendChild(el('p', {class: 'result result-error'}, 'Structure\u00a0: ' + e.message));
      });
    }
    return section;
  }

  // ---- one need, offer, structure or cooperation proposal (#need/<id>, ...) ----

  /* The views of one item that notifications link to (#need/<id>,
   * #structure/<id>, #cooperation/<id>; #offer/<id> from a structure): the
   * heading, what the item is called when its id is unknown, where the API
   * has it, and how it is drawn. */
  var DETAILS = {
    need: {title: 'Besoin', missing: 'Ce besoin', path: 'v1/needs/', render: renderItemView},
    offer: {title: 'Offre', missing: 'Cette offre', path: 'v1/offers/', render: renderItemView},
    structure: {title: 'Structure', missing: 'Cette structure', path: 'v1/structures/', render: renderStructureView},
    cooperation: {title: 'Proposition de coopération', missing: 'Cette proposition de coopération',
      path: 'v1/cooperations/', render: renderCooperationView}
  };

  function isDetail(kind) {
    return Object.prototype.hasOwnProperty.call(DETAILS, kind);
  }

  /* The page's own view that a notification's link opens ("#need/<id>"…), or ''. */
  function detailHash(link) {
    var m = /#([a-z]+)\/(.+)$/.exec(String(link || ''));
    return m && isDetail(m[1]) ? '#' + m[1] + '/' + m[2] : '';
  }

  function showDetail(kind, id) {
    var d = DETAILS[kind];
    var root = $('detail-body');
    var key = kind + '/' + id;
    clear(root);
    root.dataset.key = key;
    $('detail-title').textContent = d.title;
    var missing = d.missing + ' est introuvable' + (id ? ' (identifiant «\u00a0' + id + '\u00a0»)' : '') +
      '\u00a0: le lien est peut-être incomplet ou erroné.';
    if (!id) { setStatus('detail-status', missing); return; }
    setStatus('detail-status', 'Chargement…');
    api('GET', d.path + encodeURIComponent(id)).then(function (x) {
      if (root.dataset.key !== key) return;
      setStatus('detail-status', '');
      // Tabs and history tell details apart by their name.
      if (x && (x.title || x.name)) setTitle((x.title || x.name) + ' — ' + d.title + ' — Maillage');
      d.render(root, x, kind);
    }, function (e) {
      if (root.dataset.key !== key) return;
      if (e.status === 404) setStatus('detail-status', missing);
      else reportError(e, 'detail-status');
    });
  }

  /* A titled panel of links to items' views ({id, title} each), or `empty`. */
  function linkPanel(title, kind, items, empty) {
    var section = el('section', {class: 'panel'}, el('h2', null, title));
    if (!items || !items.length) section.appendChild(el('p', {class: 'hint'}, empty));
    else section.appendChild(el('ul', {class: 'links'}, items.map(function (x) {
      return el('li', null, el('a', {href: '#' + kind + '/' + encodeURIComponent(x.id)}, x.title || x.id));
    })));
    return section;
  }

  function renderItemView(root, x, kind) {
    root.appendChild(el('h2', null, x.title || x.id));
    if (x.description) root.appendChild(el('p', {class: 'pre'}, x.description));
    root.appendChild(itemFacts(x, true, kind === 'offer'));
    root.appendChild(openMatches(kind, x.id));
  }

  /* The open matches of a need or an offer, best first, each a link to its
   * detail, loaded after the item. */
  function openMatches(kind, id) {
    var section = el('section', {class: 'panel'}, el('h2', null, 'Mises en relation ouvertes'));
    var status = el('p', {class: 'hint'}, 'Chargement…');
    var list = el('ol', {class: 'links matches'});
    section.appendChild(status);
    section.appendChild(list);
    var path = DETAILS[kind].path + encodeURIComponent(id) + '/matches';
    var items = [];
    // Every page, in order (200 a page, 10 pages at most).
    function page(cursor, left) {
      return api('GET', path + qs({limit: 200, cursor: cursor})).then(function (data) {
        items = items.concat((data && data.items) || []);
        var next = data && data.nextCursor;
        if (next && next !== cursor && left > 1) return page(next, left - 1);
      });
    }
    page('', 10).then(function () {
      status.textContent = 'Aucune mise en relation ouverte.';
      status.hidden = items.length > 0;
      // A need's list names each offer; an offer's, each need.
      var other = kind === 'need' ? 'offer' : 'need';
      items.forEach(function (m) {
        var sid = m[other + 'StructureId'];
        var li = el('li', null,
          el('a', {href: '#match/' + encodeURIComponent(m.id)}, m[other + 'Title'] || m[other + 'Id']),
          sid ? [' — ', structureLink(sid, m[other + 'StructureName'])] : null,
          el('ul', {class: 'meta'},
            m.rank ? el('li', {'data-field': 'rank'}, rankText(m.rank)) : null,
            el('li', null, 'Score ' + percent(m.score)),
            el('li', {'data-field': 'distance'}, distanceText(m.distanceKm))));
        li.dataset.matchId = m.id;
        list.appendChild(li);
      });
    }, function (e) {
      if (e.status === 401) return;
      status.className = 'result result-error';
      status.textContent = e.message;
    });
    return section;
  }

  function renderStructureView(root, s) {
    root.appendChild(el('h2', null, s.name || s.id));
    if (s.description) root.appendChild(el('p', {class: 'pre'}, s.description));
    root.appendChild(structureFacts(s));
    root.appendChild(linkPanel('Besoins ouverts', 'need', s.openNeeds, 'Aucun besoin ouvert.'));
    root.appendChild(linkPanel('Offres ouvertes', 'offer', s.openOffers, 'Aucune offre ouverte.'));
    if (s.openItemsTruncated) root.appendChild(el('p', {class: 'hint'}, 'Listes partielles\u00a0: la structure a d’autres besoins ou offres ouverts.'));
  }

  function renderCooperationView(root, c) {
    root.appendChild(el('h2', null, c.title || c.id));
    if (c.description) root.appendChild(el('p', {class: 'pre'}, c.description));
    var dl = el('dl', {class: 'facts'});
    if (c.fromStructureId) definition(dl, 'Proposée par', structureLink(c.fromStructureId, c.fromStructureName), 'from');
    if (c.toStructureId) definition(dl, 'Adressée à', structureLink(c.toStructureId, c.toStructureName), 'to');
    else definition(dl, 'Adressée à', c.territory ? 'Toute structure du territoire\u00a0: ' + (c.territoryNames || c.territory).join(', ') : '', 'to');
    definition(dl, 'Type', capitalize(c.kindLabel), 'kind');
    definition(dl, 'Catégorie', c.categoryLabel || categoryLabel(c.category));
    definition(dl, 'Valable jusqu’au', formatDay(c.validUntil));
    root.appendChild(dl);
    var answers = el('section', {class: 'panel'}, el('h2', null, 'Réponses'));
    if (!c.answers || !c.answers.length) answers.appendChild(el('p', {class: 'hint'}, 'Pas encore de réponse.'));
    else answers.appendChild(el('ul', {class: 'links answers'}, c.answers.map(function (a) {
      // « Coopérative laitière : en discussion, le 29 nov. 2026, 12:36 », then what it said
      return el('li', null, structureLink(a.structureId, a.structureName), '\u00a0: ' + (a.answerLabel || '') +
        (a.answeredAt ? ', le ' + formatDate(a.answeredAt) : ''),
        a.comment ? el('p', {class: 'pre answer-comment'}, a.comment) : null);
    })));
    root.appendChild(answers);
  }

  // ---- collective needs -----------------------------------------------------------

  /* The collective needs come in pages (a SCAN cursor: a page may even be
   * empty with more after it); they are few, so every page is fetched. */
  /* The list of collective needs; with `target` (a collective id, from a
   * notification's link), that card is marked and brought into view. */
  function loadCollective(target) {
    var generation = ++state.collectiveGeneration;
    var list = $('collective-list');
    setStatus('collective-status', 'Chargement des besoins collectifs…');
    list.setAttribute('aria-busy', 'true');
    var filters = {department: $('c-department').value, category: $('c-category').value};
    var all = [];
    function page(cursor, left) {
      var params = {department: filters.department, category: filters.category, cursor: cursor};
      return api('GET', 'v1/collective-needs' + qs(params)).then(function (data) {
        if (generation !== state.collectiveGeneration) return;
        all = all.concat((data && data.items) || []);
        var next = data && data.nextCursor;
        if (next && next !== cursor && left > 1) return page(next, left - 1);
      });
    }
    page('', 50).then(function () {
      if (generation !== state.collectiveGeneration) return;
      clear(list);
      all.sort(function (a, b) { return String(b.updatedAt || '').localeCompare(String(a.updatedAt || '')); });
      all.forEach(function (c) { list.appendChild(renderCollective(c)); });
      var shown = target && Array.prototype.filter.call(list.children, function (li) {
        return li.dataset.collectiveId === target;
      })[0];
      if (shown) {
        shown.classList.add('is-target');
        var title = shown.querySelector('.card-title');
        title.setAttribute('tabindex', '-1');
        title.focus();
        shown.scrollIntoView({block: 'start'});
      }
      // Empty and unfiltered: say what would make one.
      var none = filters.department || filters.category ? 'Aucun besoin collectif pour ces critères.'
        : 'Aucun besoin collectif pour le moment. Il en apparaît un quand plusieurs structures d’un même '
          + 'territoire expriment, dans la même période, un besoin de la même catégorie\u00a0: une réponse '
          + 'mutualisée devient possible.';
      setStatus('collective-status', all.length === 0 ? none
        : all.length === 1 ? '1 besoin collectif.' : formatNumber(all.length) + ' besoins collectifs.');
    }, function (e) {
      if (generation !== state.collectiveGeneration) return;
      reportError(e, 'collective-status');
    }).then(function () {
      list.removeAttribute('aria-busy');
    });
  }

  function renderCollective(c) {
    var uid = 'c' + (++itemCounter);
    var count = Number(c.structures) || (c.structureIds ? c.structureIds.length : 0);
    var article = el('article', {class: 'card card-collective_need', 'aria-labelledby': uid + '-title'},
      el('p', {class: 'badges'}, el('span', {class: 'badge badge-kind'}, 'Besoin collectif'),
        c.revision > 1 ? el('span', {class: 'badge'}, 'Révision ' + c.revision) : null),
      el('h2', {class: 'card-title', id: uid + '-title'},
        (c.categoryLabel || categoryLabel(c.category)) + ' — ' + (c.territoryLabel || c.territoryName || c.territory || 'territoire')));
    var when = c.updatedAt ? formatDate(c.updatedAt) : '';
    var meta = el('ul', {class: 'meta', 'aria-label': 'Caractéristiques'},
      when ? el('li', null, 'Mis à jour le ', el('time', {datetime: c.updatedAt}, when)) : null,
      c.department ? el('li', null, c.departmentName || departmentName(c.department)) : null,
      c.radiusKm ? el('li', {'data-field': 'radius'}, 'Dans un rayon de ' + formatNumber(c.radiusKm) + '\u00a0km') : null,
      el('li', null, count === 1 ? '1 structure' : formatNumber(count) + ' structures'),
      el('li', null, (c.needIds ? c.needIds.length : 0) + ' besoin' + ((c.needIds && c.needIds.length > 1) ? 's' : '')));
    article.appendChild(meta);
    // What: each need gathered, a link to its view, with its structure's.
    // The first few in view, the others behind one toggle (a group may
    // gather a few hundred).
    var names = c.structureNames || {};
    var needs = (c.needs || []).map(function (n) {
      return el('li', null,
        el('a', {href: '#need/' + encodeURIComponent(n.id)}, n.title || n.id),
        n.structureId ? [' — ', structureLink(n.structureId, names[n.structureId])] : null,
        n.open === false ? [' ', el('span', {class: 'badge'}, 'Clos')] : null);
    });
    var SHOWN = 5;
    if (needs.length) {
      article.appendChild(el('h3', {class: 'needs-heading'}, 'Besoins'));
      article.appendChild(el('ul', {class: 'collective-needs'}, needs.slice(0, SHOWN)));
      if (needs.length > SHOWN) {
        var rest = needs.length - SHOWN;
        article.appendChild(el('details', {class: 'collective-more'},
          el('summary', null, rest === 1 ? 'Voir l’autre besoin' : 'Voir les ' + formatNumber(rest) + ' autres besoins'),
          el('ul', {class: 'collective-needs'}, needs.slice(SHOWN))));
      }
    }
    if (c.explanation) article.appendChild(el('p', {class: 'reason'}, el('strong', null, 'Pourquoi\u00a0: '), c.explanation));
    var li = el('li', {class: 'card-item'}, article);
    li.dataset.collectiveId = c.collectiveId || c.id || '';
    return li;
  }

  // ---- views -----------------------------------------------------------------------

  var VIEWS = ['opportunites', 'collectifs', 'territoire', 'match', 'detail'];

  /* The hash says the view: #opportunites, #collectifs, #territoire, and
   * the notifier's links: #match/<id>, #need/<id>, #structure/<id>,
   * #cooperation/<id> (the DETAILS), #collective/<id>, #inbox/<staff>. */
  function route(initial) {
    if (!state.me) return;
    var hash = '';
    try {
      hash = decodeURIComponent(location.hash.replace(/^#/, ''));
    } catch (e) {
      hash = ''; // a malformed address: the default view
    }
    var view = 'opportunites', arg = '';
    var slash = hash.indexOf('/');
    var head = slash >= 0 ? hash.slice(0, slash) : hash;
    if (head === 'match' && slash >= 0) { view = 'match'; arg = hash.slice(slash + 1); }
    else if (isDetail(head) && slash >= 0) { view = 'detail'; arg = hash.slice(slash + 1); }
    else if (head === 'collectifs' || head === 'collective') {
      view = 'collectifs';
      if (head === 'collective' && slash >= 0) arg = hash.slice(slash + 1); // one of them, shown first
    }
    else if (head === 'territoire') view = 'territoire';
    var previous = state.view;
    state.view = view;
    VIEWS.forEach(function (v) { $('view-' + v).hidden = v !== view; });
    $('view-signin').hidden = true;
    document.querySelectorAll('#main-nav a[data-view]').forEach(function (a) {
      var current = a.dataset.view === view || (view === 'match' && a.dataset.view === 'opportunites');
      if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    if (view === 'collectifs') loadCollective(arg);
    if (view === 'territoire' && MG.territory) MG.territory.show();
    if (view === 'match') showMatch(arg);
    if (view === 'detail') showDetail(head, arg);
    if (view === 'opportunites' && (previous === 'match' || previous === 'detail') && state.inbox.loaded) updateInboxStatus();
    var titles = {opportunites: 'Mes opportunités', collectifs: 'Besoins collectifs', territoire: 'Territoire', match: 'Mise en relation'};
    setTitle((view === 'detail' ? DETAILS[head].title : titles[view]) + ' — Maillage');
    // Move focus to the new view's heading (one item to another too), except
    // on the first display (focus stays at the top of the page for a fresh load).
    // Back from a detail to the list: to the card it was opened from, so the
    // reading goes on where it was.
    if (!initial && previous && (previous !== view || arg) && previous !== 'signin') {
      var back = view === 'opportunites' && (previous === 'match' || previous === 'detail') && returnLink();
      var h = back || $('view-' + view).querySelector('h1');
      if (h) h.focus();
    } else if (initial && previous === 'signin') {
      var h1 = $('view-' + view).querySelector('h1');
      if (h1) h1.focus();
    }
  }

  /* The detail link of the card last left for its detail, if still shown. */
  function returnLink() {
    var item = state.returnTo && state.inbox.byId[state.returnTo];
    return item ? item.node.querySelector('a.detail-link') : null;
  }

  // ---- wiring -------------------------------------------------------------------------

  function init() {
    $('signin-form').addEventListener('submit', signIn);
    $('token').addEventListener('input', function () { $('token').removeAttribute('aria-invalid'); });
    $('sign-out').addEventListener('click', signOut);
    $('banner-close').addEventListener('click', hideBanner);
    $('inbox-more').addEventListener('click', function () { loadInbox(false); });
    $('inbox-list').addEventListener('click', function (ev) {
      var a = ev.target.closest('a.detail-link');
      var li = a && a.closest('li[data-nid]');
      if (li) state.returnTo = li.dataset.nid;
    });
    var filters = $('inbox-filters');
    filters.addEventListener('change', function () { loadInbox(true); });
    filters.addEventListener('submit', function (ev) { ev.preventDefault(); });
    filters.addEventListener('reset', function () {
      // The form's values change after the reset event.
      window.setTimeout(function () { loadInbox(true); }, 0);
    });
    var cf = $('collective-filters');
    cf.addEventListener('change', loadCollective);
    cf.addEventListener('submit', function (ev) { ev.preventDefault(); });
    window.addEventListener('hashchange', function () { route(false); });
    $('main-nav').addEventListener('click', function (ev) {
      var a = ev.target.closest('a[data-view]');
      // Clicking the current section's link again: back to its top.
      if (a && location.hash === '#' + a.dataset.view) route(false);
    });
    if (MG.territory) MG.territory.init();
    state.view = '';
    start();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
