/*! tracker.js — candidate engagement browser tracker. Apache-2.0. Docs: docs/tracker.md */
(function (w, d) {
  "use strict";
  var VERSION = "1.0.0";
  var P = "tx_";
  var nav = w.navigator;
  var old = w.tx;
  if (old && old.VERSION) return; // double include
  var S = { key: null, o: {}, pre: [], held: [], consent: null, off: false, busy: {}, timer: 0 };

  function store(k, v) {
    try {
      if (v === undefined) return w.localStorage.getItem(P + k);
      if (v === null) w.localStorage.removeItem(P + k);
      else w.localStorage.setItem(P + k, v);
    } catch (e) { /* storage blocked: memory only */ }
    return null;
  }
  function cookie(k, v) {
    var name = P + k, o = S.o;
    if (v === undefined) {
      var m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
      return m ? decodeURIComponent(m[1]) : null;
    }
    d.cookie = name + "=" + (v === null ? "" : encodeURIComponent(v)) + "; Path=/; SameSite=Lax" +
      "; Max-Age=" + (v === null ? 0 : o.cookieMaxAge) + (o.cookieDomain ? "; Domain=" + o.cookieDomain : "") +
      (w.location.protocol === "https:" ? "; Secure" : "");
    return null;
  }
  function uuid() {
    if (w.crypto && w.crypto.randomUUID) return w.crypto.randomUUID();
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (c) {
      return (c ^ (w.crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16);
    });
  }
  function now() { return new Date().toISOString(); }
  function allowed() {
    return !S.off && S.key !== null && S.consent !== false && (!S.o.requireConsent || S.consent === true);
  }
  // An id lives in a first-party cookie mirrored to localStorage; either restores the other.
  function ident(k, create) {
    var v = cookie(k) || store(k);
    if (!v && create) v = uuid();
    if (v) { cookie(k, v); store(k, v); }
    return v;
  }
  function forget(k) { cookie(k, null); store(k, null); }

  function campaign() {
    var out = {}, q = new URLSearchParams(w.location.search), n = 0;
    var map = { utm_source: "source", utm_medium: "medium", utm_campaign: "name", utm_term: "term", utm_content: "content" };
    for (var k in map) if (q.get(k)) { out[map[k]] = q.get(k); n++; }
    return n ? out : null;
  }
  function pageInfo() {
    var l = w.location;
    return { path: l.pathname, referrer: d.referrer, search: l.search, title: d.title, url: l.href };
  }
  function context() {
    var c = {
      library: { name: "tracker.js", version: VERSION }, page: pageInfo(), userAgent: nav.userAgent,
      locale: nav.language, timezone: (Intl.DateTimeFormat().resolvedOptions() || {}).timeZone
    };
    var utm = campaign();
    if (utm) c.campaign = utm;
    if (S.consent === true) c.consent = { categoryPreferences: { analytics: true } };
    return c;
  }
  function message(type, fields, at) {
    var e = { type: type, messageId: uuid(), timestamp: at, anonymousId: ident("aid", true), context: context() };
    var uid = ident("uid", false);
    if (uid) e.userId = uid;
    for (var k in fields) if (fields[k] !== undefined) e[k] = fields[k];
    return e;
  }

  // Persistent queue: events wait in localStorage until the ingest acknowledged them.
  function queue(q) {
    if (q) return store("q", JSON.stringify(q.slice(-S.o.maxQueue)));
    try { return JSON.parse(store("q") || "[]"); } catch (e) { return []; }
  }
  function enqueue(e) {
    var q = queue(); q.push(e); queue(q);
    if (q.length >= S.o.flushAt) flush(); else schedule(S.o.flushInterval);
  }
  function schedule(ms) {
    if (S.timer) return;
    S.timer = setTimeout(function () { S.timer = 0; flush(); }, ms);
  }
  function drop(ids) { queue(queue().filter(function (e) { return !ids[e.messageId]; })); }
  function ids(list) { var m = {}; list.forEach(function (e) { m[e.messageId] = 1; }); return m; }
  function take(q) { // at most 60 KiB: under the keepalive and beacon budgets
    var out = [], size = 0;
    for (var i = 0; i < q.length && out.length < 100; i++) {
      size += JSON.stringify(q[i]).length;
      if (out.length && size > 60000) break;
      out.push(q[i]);
    }
    return out;
  }
  function flush() {
    if (!allowed() || Object.keys(S.busy).length) return;
    var wait = (+store("qn") || 0) - Date.now();
    if (wait > 0) return schedule(wait);
    var batch = take(queue());
    if (!batch.length) return;
    var sentAt = now(), body;
    batch.forEach(function (e) { e.sentAt = sentAt; }); // same messageId, fresh sentAt
    body = JSON.stringify({ batch: batch, sentAt: sentAt, writeKey: S.key });
    S.busy = ids(batch);
    w.fetch(S.o.host + "/v1/batch", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: body,
      keepalive: body.length < 60000, credentials: "omit"
    }).then(function (r) { done(r.status); }, function () { done(0); });
  }
  function done(status) {
    var sent = S.busy, n;
    S.busy = {};
    if (!status || status === 408 || status === 429 || status >= 500) {
      n = (+store("qa") || 0) + 1;
      if (n <= S.o.maxRetries) {
        var delay = Math.min(S.o.retryBase * Math.pow(2, n - 1), S.o.retryMax) * (0.5 + Math.random());
        store("qa", n); store("qn", Date.now() + delay);
        return schedule(delay);
      }
    }
    drop(sent); store("qa", null); store("qn", null); // delivered, refused (4xx) or out of retries
    if (queue().length) flush();
  }
  // On leaving the page: beacon what was never refused; a queue in backoff waits for the next page.
  function beacon() {
    if (!allowed() || !nav.sendBeacon || +store("qa")) return;
    var q = queue().filter(function (e) { return !S.busy[e.messageId]; }), batch = take(q);
    if (!batch.length) return;
    var sentAt = now();
    batch.forEach(function (e) { e.sentAt = sentAt; });
    var url = S.o.host + "/v1/b?writeKey=" + encodeURIComponent(S.key);
    if (nav.sendBeacon(url, JSON.stringify({ batch: batch, sentAt: sentAt }))) drop(ids(batch));
  }

  // Calls made before load or before consent are held in memory only, then sent in order.
  function release() {
    if (!allowed()) return;
    var held = S.held;
    S.held = [];
    held.forEach(function (h) {
      if (h[0] === "identify" && h[1].userId) { cookie("uid", h[1].userId); store("uid", h[1].userId); }
      enqueue(message(h[0], h[1], h[2]));
    });
    flush();
  }
  function emit(type, fields) {
    var at = now();
    if (S.off) return;
    if (!allowed()) { if (S.consent !== false) S.held.push([type, fields, at]); return; }
    enqueue(message(type, fields, at));
  }
  var api = {
    VERSION: VERSION,
    load: function (key, options) {
      var o = options || {}, dflt = {
        host: S.host, requireConsent: false, respectGPC: true, autoPage: true, flushAt: 10, flushInterval: 5000,
        retryBase: 3000, retryMax: 1800000, maxRetries: 10, maxQueue: 500, cookieMaxAge: 31536000, cookieDomain: ""
      };
      for (var k in dflt) S.o[k] = k in o ? o[k] : dflt[k];
      S.o.host = String(S.o.host).replace(/\/$/, "");
      S.key = key;
      S.off = S.o.respectGPC && nav.globalPrivacyControl === true;
      if (S.o.autoPage) api.page();
      release();
      return api;
    },
    page: function (name, properties) {
      var p = pageInfo(), x = properties || {};
      for (var k in x) p[k] = x[k];
      emit("page", { name: name, properties: p });
    },
    track: function (event, properties) { emit("track", { event: event, properties: properties || {} }); },
    identify: function (userId, traits) {
      if (userId && allowed()) { cookie("uid", userId); store("uid", userId); }
      emit("identify", { userId: userId || undefined, traits: traits || {} });
    },
    reset: function () { forget("aid"); forget("uid"); },
    consent: function (granted) {
      var yes = granted === true || !!(granted && granted.analytics);
      S.consent = yes;
      if (!yes) { S.held = []; forget("aid"); forget("uid"); store("q", null); return; }
      release();
    },
    flush: function () { flush(); },
    trackVideo: function (video, options) {
      var o = options || {}, at = o.percent || 50, sent = false;
      video.addEventListener("timeupdate", function () {
        if (sent || !video.duration) return;
        if ((100 * video.currentTime) / video.duration < at) return;
        sent = true;
        api.track("Video Watched", {
          title: o.title || video.title || video.currentSrc, src: video.currentSrc, percent: at,
          duration: Math.round(video.duration)
        });
      });
    },
    trackDownloads: function (root, options) {
      var o = options || {}, ext = o.extensions || ["pdf", "doc", "docx", "ppt", "pptx", "xls", "xlsx", "zip"];
      (root || d).addEventListener("click", function (ev) {
        var a = ev.target && ev.target.closest && ev.target.closest("a[href]");
        if (!a) return;
        var file = a.pathname.split("/").pop(), type = (file.split(".").pop() || "").toLowerCase();
        if (!a.hasAttribute("download") && ext.indexOf(type) < 0) return;
        api.track("Content Downloaded", { url: a.href, fileName: file, fileType: type, title: a.textContent.trim() });
      }, true);
    },
    trackForm: function (form, options) {
      var o = options || {};
      form.addEventListener("submit", function () {
        var p = { formId: form.id || undefined, formName: form.getAttribute("name") || undefined };
        var x = o.properties || {};
        for (var k in x) p[k] = x[k];
        api.track(o.event || "Contact Form Submitted", p);
        if (o.flush !== false) beacon();
      });
    }
  };

  var me = d.currentScript && d.currentScript.src;
  S.host = me ? me.replace(/\/v1\/tracker\.js.*$/, "") : w.location.origin;
  w.addEventListener("pagehide", beacon);
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") beacon(); });
  w.tx = api;
  // Replay calls made to the stub before this file loaded: load first, then the rest in order.
  var calls = old && old.length ? [].slice.call(old) : [];
  calls.filter(function (c) { return c[0] === "load"; }).concat(calls.filter(function (c) { return c[0] !== "load"; }))
    .forEach(function (c) { if (api[c[0]]) api[c[0]].apply(api, c.slice(1)); });
})(window, document);
