/*
 * Storefront review widget: plain JavaScript, no framework, no dependencies.
 *
 *   <div data-review-widget data-product-id="blender-02"
 *        data-product-name="Blender 2000"      (optional: JSON-LD Product name)
 *        data-api=""                           (optional: base URL of widget/serve.py; default same origin)
 *        data-locale="ja"                      (optional: en, ja, ko, zh-Hans, zh-Hant; see below)
 *        data-page-size="10"></div>            (optional)
 *   <script src="/review-widget.js" defer></script>
 *
 * It fetches the product's verified document from `${api}/api/reviews?product_id=...` and shows
 * the aggregate and histogram over all published reviews, "N reviews not shown" with reasons, a
 * "how we moderate" note, and the reviews with their badges: most recent first by default, by
 * rating only when the shopper picks it, a page at a time. Every piece of review data is put in
 * the page with textContent / attributes, never innerHTML, so markup in a review shows as text.
 * The schema.org JSON-LD block from the document is added to <head> (a data block, not run).
 * Signatures are verified by the server, never here: the key must not reach the browser.
 *
 * Language: the first supported locale among `data-locale`, the page's `<html lang>` and
 * `navigator.languages`, else English. Every word the widget shows comes from the catalogue
 * `${api}/i18n/<locale>.json` (ICU-style messages: `{name}`, `{n, plural, one {# x} other {# xs}}`
 * with Intl.PluralRules); numbers and dates go through Intl.NumberFormat / Intl.DateTimeFormat.
 * Reviews are never translated: each keeps its own `lang`, and its title and body get `dir="auto"`.
 */
(function () {
  "use strict";

  var SORTS = {
    recent: function (a, b) { return byRecent(a, b); },
    rating_desc: function (a, b) { return (b.rating - a.rating) || byRecent(a, b); },
    rating_asc: function (a, b) { return (a.rating - b.rating) || byRecent(a, b); }
  };
  var LOCALES = ["en", "ja", "ko", "zh-Hans", "zh-Hant"];
  var DEFAULT_LOCALE = "en";
  // Shown only when not even the English catalogue can be fetched.
  var LAST_RESORT = { unavailable: "Reviews are unavailable at the moment. Please try again later." };

  // ---- locale and messages ----------------------------------------------------------------

  /** The supported locale a BCP 47 tag maps to (zh-TW, zh-HK → zh-Hant; zh, zh-CN → zh-Hans), or null. */
  function supportedLocale(tag) {
    if (!tag) return null;
    tag = String(tag).trim().replace(/_/g, "-");
    var lower = tag.toLowerCase(), lang = lower.split("-")[0];
    if (lang === "zh") {
      var script = null;
      try { script = new Intl.Locale(tag).maximize().script; } catch (e) { script = null; }
      if (!script) script = /-(hant|tw|hk|mo)(-|$)/.test(lower) ? "Hant" : "Hans";
      return script === "Hant" ? "zh-Hant" : "zh-Hans";
    }
    return LOCALES.indexOf(lang) >= 0 ? lang : null;
  }

  /** data-locale, then <html lang>, then navigator.languages, then English. */
  function resolveLocale(root) {
    var nav = (navigator.languages && navigator.languages.length) ? navigator.languages : [navigator.language];
    var candidates = [root.getAttribute("data-locale"), document.documentElement.getAttribute("lang")].concat(nav);
    for (var i = 0; i < candidates.length; i++) {
      var loc = supportedLocale(candidates[i]);
      if (loc) return loc;
    }
    return DEFAULT_LOCALE;
  }

  var catalogues = {};
  function loadCatalogue(api, locale) {
    var key = api + "|" + locale;
    if (!catalogues[key]) {
      catalogues[key] = fetch(api + "/i18n/" + locale + ".json", { headers: { Accept: "application/json" }, credentials: "omit" })
        .then(function (resp) {
          if (!resp.ok) throw new Error("catalogue " + locale + ": HTTP " + resp.status);
          return resp.json();
        });
      catalogues[key].catch(function () { delete catalogues[key]; });
    }
    return catalogues[key];
  }

  /** Index of the "}" that closes the "{" at ``start``. */
  function closing(src, start) {
    var depth = 0;
    for (var i = start; i < src.length; i++) {
      if (src[i] === "{") depth++;
      else if (src[i] === "}" && --depth === 0) return i;
    }
    throw new Error("unbalanced braces in message: " + src);
  }

  function Messages(locale, catalogue) {
    this.locale = locale;
    this.catalogue = catalogue;
    this.numbers = new Intl.NumberFormat(locale);
    this.plurals = new Intl.PluralRules(locale);
    this.dates = new Intl.DateTimeFormat(locale, { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });
  }

  Messages.prototype.number = function (n, digits) {
    if (digits === undefined) return this.numbers.format(n);
    return new Intl.NumberFormat(this.locale, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);
  };

  Messages.prototype.date = function (iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : this.dates.format(d);
  };

  Messages.prototype.value = function (v) { return typeof v === "number" ? this.number(v) : String(v); };

  /** ICU-style subset: {name}, {name, number}, {name, plural, =0 {...} one {...} other {...}} with #. */
  Messages.prototype.format = function (src, args, hash) {
    var out = "", i = 0;
    while (i < src.length) {
      var c = src[i];
      if (c === "{") {
        var end = closing(src, i);
        out += this.argument(src.slice(i + 1, end), args);
        i = end + 1;
      } else {
        out += (c === "#" && hash !== undefined) ? hash : c;
        i++;
      }
    }
    return out;
  };

  Messages.prototype.argument = function (inner, args) {
    var parts = inner.split(","), name = parts[0].trim();
    var value = args ? args[name] : undefined;
    if (value === undefined || value === null) value = "";
    if (parts.length === 1) return this.value(value);
    var type = parts[1].trim();
    if (type === "number") return this.number(Number(value));
    if (type !== "plural") throw new Error("unsupported message argument type: " + type);
    var n = Number(value), category = this.plurals.select(n);
    var options = inner.slice(inner.indexOf(",", inner.indexOf(",") + 1) + 1), chosen = {}, j = 0;
    while (j < options.length) {
      var open = options.indexOf("{", j);
      if (open < 0) break;
      var selector = options.slice(j, open).trim(), close = closing(options, open);
      chosen[selector] = options.slice(open + 1, close);
      j = close + 1;
    }
    var body = chosen["=" + n];
    if (body === undefined) body = chosen[category];
    if (body === undefined) body = chosen.other || "";
    return this.format(body, args, this.number(n));
  };

  /** The catalogue message ``key`` with ``args``. */
  Messages.prototype.t = function (key, args) {
    var src = this.catalogue[key];
    if (src === undefined) return key;
    return this.format(src, args);
  };

  Messages.prototype.list = function (items) { return items.join(this.t("list_separator")); };

  function byRecent(a, b) {
    var ta = Date.parse(a.created_at), tb = Date.parse(b.created_at);
    if (ta !== tb) return (isNaN(tb) ? -Infinity : tb) - (isNaN(ta) ? -Infinity : ta);
    return a.review_id < b.review_id ? -1 : (a.review_id > b.review_id ? 1 : 0);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (Object.prototype.hasOwnProperty.call(attrs, k) && attrs[k] !== null && attrs[k] !== undefined) {
          node.setAttribute(k, String(attrs[k]));
        }
      }
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function stars(rating) {
    var full = Math.floor(rating), half = rating - full >= 0.5 ? 1 : 0;
    return "\u2605".repeat(full) + (half ? "\u00bd" : "") + "\u2606".repeat(5 - full - half);
  }

  function reasonText(m, code) {
    var key = "reason_" + code;
    return Object.prototype.hasOwnProperty.call(m.catalogue, key) ? m.t(key) : m.t("reason_unspecified");
  }

  function renderSummary(m, doc) {
    var agg = doc.aggregate;
    var box = el("div", { "class": "rw-summary" });
    var avg = agg.average_rating === null ? m.t("no_ratings") : m.t("average", { average: m.number(agg.average_rating, 1) });
    box.appendChild(el("p", { "class": "rw-average", "data-role": "average" }, avg));
    box.appendChild(el("p", { "class": "rw-count", "data-role": "review-count" }, m.t("review_count", { count: agg.review_count })));
    var hist = el("ul", { "class": "rw-histogram", "data-role": "histogram", "aria-label": m.t("histogram_label") });
    for (var s = 5; s >= 1; s--) {
      var n = agg.rating_histogram[String(s)] || 0;
      var row = el("li", { "data-star": s, "data-count": n });
      row.appendChild(el("span", { "class": "rw-hist-label" }, m.t("histogram_star", { stars: s })));
      row.appendChild(el("progress", { max: Math.max(agg.review_count, 1), value: n,
        "aria-label": m.t("histogram_bar", { count: n, stars: s }) }));
      row.appendChild(el("span", { "class": "rw-hist-count" }, m.number(n)));
      hist.appendChild(row);
    }
    box.appendChild(hist);
    box.appendChild(el("p", { "class": "rw-hist-note" }, m.t("histogram_note")));
    return box;
  }

  function renderNotShown(m, doc) {
    var w = doc.withheld;
    if (!w.count) return el("p", { "class": "rw-not-shown", "data-role": "not-shown", "data-count": 0 },
      m.t("not_shown_none"));
    var parts = Object.keys(w.by_reason).sort().map(function (code) {
      return m.t("not_shown_item", { count: w.by_reason[code], reason: reasonText(m, code) });
    });
    return el("p", { "class": "rw-not-shown", "data-role": "not-shown", "data-count": w.count },
      m.t("not_shown", { count: w.count, reasons: m.list(parts) }));
  }

  function renderModeration(m, doc) {
    var details = el("details", { "class": "rw-moderation", "data-role": "moderation" });
    details.appendChild(el("summary", null, m.t("moderation_title")));
    var policy = doc.moderation && doc.moderation.policy;
    var lines = ["moderation_neutral", "moderation_verified", "moderation_badges", "moderation_order",
      "moderation_language"].map(function (key) { return [key, m.t(key)]; });
    lines.push(detectorsLine(m, doc.moderation));
    if (policy) lines.push(["moderation_policy", m.t("moderation_policy", { id: policy.id, version: policy.version })]);
    lines.forEach(function (line) { details.appendChild(el("p", { "data-message": line[0] }, line[1])); });
    return details;
  }

  function detectorsLine(m, moderation) {
    var ds = (moderation && moderation.detectors) || [];
    var scored = ds.filter(function (d) { return d.status === "scored"; });
    if (!scored.length) return ["moderation_automated_not_used", m.t("moderation_automated_not_used")];
    var names = scored.map(function (d) {
      var key = "detector_" + d.id;
      return Object.prototype.hasOwnProperty.call(m.catalogue, key) ? m.t(key) : String(d.id).replace(/_/g, " ");
    });
    return ["moderation_automated_used", m.t("moderation_automated_used", { detectors: m.list(names) })];
  }

  function badgeText(m, b) {
    if (b.code === "syndicated") return b.partner ? m.t("badge_syndicated_partner", { partner: b.partner }) : m.t("badge_syndicated");
    var key = "badge_" + b.code;
    return Object.prototype.hasOwnProperty.call(m.catalogue, key) ? m.t(key) : b.text;
  }

  function renderReview(m, r) {
    // The review's own language on the item; the widget's words inside it carry the widget's locale.
    var ui = m.locale;
    var li = el("li", { "class": "rw-review", "data-role": "review", "data-review-id": r.review_id,
      "data-rating": r.rating, lang: r.language || null });
    var head = el("div", { "class": "rw-review-head" });
    head.appendChild(el("span", { "class": "rw-stars", "aria-label": m.t("stars_label", { rating: r.rating }),
      "data-role": "stars", lang: ui }, stars(r.rating)));
    head.appendChild(el("span", { "class": "rw-rating", lang: ui }, m.t("rating_short", { rating: r.rating })));
    if (r.title) head.appendChild(el("strong", { "class": "rw-title", "data-role": "title", dir: "auto" }, r.title));
    head.appendChild(el("time", { datetime: r.created_at, "class": "rw-date", lang: ui }, m.date(r.created_at)));
    li.appendChild(head);
    if (r.badges && r.badges.length) {
      var badges = el("ul", { "class": "rw-badges", lang: ui });
      r.badges.forEach(function (b) {
        badges.appendChild(el("li", { "class": "rw-badge rw-badge-" + b.code, "data-badge": b.code }, badgeText(m, b)));
      });
      li.appendChild(badges);
    }
    li.appendChild(el("p", { "class": "rw-body", "data-role": "body", dir: "auto" }, r.body));
    return li;
  }

  function addJsonLd(doc, productName) {
    if (!doc.json_ld) return;
    var data = JSON.parse(JSON.stringify(doc.json_ld));
    if (productName) data.name = productName;
    var script = el("script", { type: "application/ld+json", "data-review-widget-jsonld": doc.product_id });
    script.textContent = JSON.stringify(data);
    document.head.appendChild(script);
  }

  function Widget(root, doc, messages) {
    this.root = root;
    this.doc = doc;
    this.m = messages;
    this.pageSize = Math.max(1, parseInt(root.getAttribute("data-page-size"), 10) || 10);
    this.sort = "recent";
    this.page = 0;
  }

  Widget.prototype.sorted = function () {
    return this.doc.reviews.slice().sort(SORTS[this.sort]);
  };

  Widget.prototype.render = function () {
    var self = this, doc = this.doc, m = this.m;
    var root = this.root;
    while (root.firstChild) root.removeChild(root.firstChild);
    root.classList.add("rw");
    root.setAttribute("lang", m.locale);
    root.setAttribute("data-ui-locale", m.locale);
    root.appendChild(el("h2", { "class": "rw-heading", "data-role": "heading" }, m.t("heading")));
    root.appendChild(renderSummary(m, doc));
    root.appendChild(renderNotShown(m, doc));
    root.appendChild(renderModeration(m, doc));

    var controls = el("div", { "class": "rw-controls" });
    var label = el("label", { "for": "rw-sort-" + uid(root) }, m.t("sort_label"));
    var select = el("select", { id: "rw-sort-" + uid(root), "data-role": "sort" });
    Object.keys(SORTS).forEach(function (key) {
      var opt = el("option", { value: key }, m.t("sort_" + key));
      if (key === self.sort) opt.selected = true;
      select.appendChild(opt);
    });
    select.addEventListener("change", function () { self.sort = select.value; self.page = 0; self.renderList(); });
    label.appendChild(select);
    controls.appendChild(label);
    root.appendChild(controls);

    this.list = el("ol", { "class": "rw-list", "data-role": "reviews" });
    root.appendChild(this.list);
    var pager = el("nav", { "class": "rw-pager", "aria-label": m.t("pager_label") });
    this.prev = el("button", { type: "button", "data-role": "prev" }, m.t("page_prev"));
    this.pageInfo = el("span", { "data-role": "page-info", "aria-live": "polite" });
    this.next = el("button", { type: "button", "data-role": "next" }, m.t("page_next"));
    this.prev.addEventListener("click", function () { self.go(self.page - 1); });
    this.next.addEventListener("click", function () { self.go(self.page + 1); });
    pager.appendChild(this.prev);
    pager.appendChild(this.pageInfo);
    pager.appendChild(this.next);
    root.appendChild(pager);
    this.renderList();
    root.setAttribute("data-state", "ready");
  };

  Widget.prototype.pages = function () { return Math.max(1, Math.ceil(this.doc.reviews.length / this.pageSize)); };

  Widget.prototype.go = function (page) {
    this.page = Math.min(Math.max(0, page), this.pages() - 1);
    this.renderList();
  };

  Widget.prototype.renderList = function () {
    var list = this.list, m = this.m;
    while (list.firstChild) list.removeChild(list.firstChild);
    var start = this.page * this.pageSize;
    var shown = this.sorted().slice(start, start + this.pageSize);
    shown.forEach(function (r) { list.appendChild(renderReview(m, r)); });
    if (!this.doc.reviews.length) list.appendChild(el("li", { "class": "rw-empty" }, m.t("empty")));
    this.pageInfo.textContent = m.t("page_info", { page: this.page + 1, pages: this.pages() });
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= this.pages() - 1;
    this.root.setAttribute("data-sort", this.sort);
    this.root.setAttribute("data-page", String(this.page + 1));
  };

  var uidCounter = 0;
  function uid(root) {
    if (!root.__rwUid) root.__rwUid = ++uidCounter;
    return root.__rwUid;
  }

  /** Messages for ``locale``, falling back to English, then to a one-line last resort. */
  function messagesFor(api, locale) {
    return loadCatalogue(api, locale).then(function (cat) { return new Messages(locale, cat); }, function (err) {
      if (locale === DEFAULT_LOCALE) throw err;
      if (window.console) console.warn("review widget: " + err.message + "; using " + DEFAULT_LOCALE);
      return loadCatalogue(api, DEFAULT_LOCALE).then(function (cat) { return new Messages(DEFAULT_LOCALE, cat); });
    }).catch(function (err) {
      if (window.console) console.warn("review widget: " + err.message);
      return new Messages(DEFAULT_LOCALE, LAST_RESORT);
    });
  }

  function mount(root) {
    var productId = root.getAttribute("data-product-id");
    var api = (root.getAttribute("data-api") || "").replace(/\/$/, "");
    var locale = resolveLocale(root);
    root.setAttribute("data-state", "loading");
    root.setAttribute("aria-busy", "true");
    var docPromise = fetch(api + "/api/reviews?product_id=" + encodeURIComponent(productId || ""), {
      headers: { Accept: "application/json" }, credentials: "omit"
    }).then(function (resp) {
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      return resp.json();
    });
    docPromise.catch(function () {});   // handled below, once the messages are here
    return messagesFor(api, locale).then(function (m) {
      root.setAttribute("lang", m.locale);
      if (root.getAttribute("data-state") === "loading") root.textContent = m.t("loading");
      return docPromise.then(function (doc) {
        if (m.catalogue === LAST_RESORT) throw new Error("no message catalogue");
        var widget = new Widget(root, doc, m);
        widget.render();
        addJsonLd(doc, root.getAttribute("data-product-name"));
        root.__reviewWidget = widget;
        root.removeAttribute("aria-busy");
        return widget;
      }).catch(function (err) {
        root.textContent = m.t("unavailable");
        root.setAttribute("data-error", err.message);
        root.setAttribute("data-state", "error");
        root.removeAttribute("aria-busy");
      });
    });
  }

  function mountAll() {
    var roots = document.querySelectorAll("[data-review-widget]");
    return Promise.all(Array.prototype.map.call(roots, mount));
  }

  window.ReviewWidget = { mount: mount, mountAll: mountAll, locales: LOCALES.slice(),
    supportedLocale: supportedLocale, Messages: Messages };
  if (!document.currentScript || document.currentScript.getAttribute("data-manual") === null) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
    else mountAll();
  }
})();
