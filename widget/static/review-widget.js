/*
 * Storefront review widget: plain JavaScript, no framework, no dependencies.
 *
 *   <div data-review-widget data-product-id="blender-02"
 *        data-product-name="Blender 2000"      (optional: JSON-LD Product name)
 *        data-api=""                           (optional: base URL of widget/serve.py; default same origin)
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
 */
(function () {
  "use strict";

  var SORTS = {
    recent: { label: "Most recent", compare: function (a, b) { return byRecent(a, b); } },
    rating_desc: { label: "Highest rating", compare: function (a, b) { return (b.rating - a.rating) || byRecent(a, b); } },
    rating_asc: { label: "Lowest rating", compare: function (a, b) { return (a.rating - b.rating) || byRecent(a, b); } }
  };
  var REASON_TEXT = {
    empty_after_cleaning: "no text left after removing markup",
    personal_data_redacted: "personal data",
    duplicate_content: "duplicate or copied text",
    near_duplicate: "duplicate or copied text",
    suspected_fake: "suspected fake",
    signature_not_verified: "could not be verified as unaltered",
    unspecified: "other reasons"
  };

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

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function stars(rating) {
    var full = Math.floor(rating), half = rating - full >= 0.5 ? 1 : 0;
    return "\u2605".repeat(full) + (half ? "\u00bd" : "") + "\u2606".repeat(5 - full - half);
  }

  function reasonText(code) { return REASON_TEXT[code] || String(code).replace(/_/g, " "); }

  function renderSummary(doc) {
    var agg = doc.aggregate;
    var box = el("div", { "class": "rw-summary" });
    var avg = agg.average_rating === null ? "No ratings yet" : agg.average_rating.toFixed(1) + " out of 5";
    box.appendChild(el("p", { "class": "rw-average", "data-role": "average" }, avg));
    box.appendChild(el("p", { "class": "rw-count", "data-role": "review-count" },
      plural(agg.review_count, "review", "reviews")));
    var hist = el("ul", { "class": "rw-histogram", "data-role": "histogram", "aria-label": "Rating histogram" });
    for (var s = 5; s >= 1; s--) {
      var n = agg.rating_histogram[String(s)] || 0;
      var row = el("li", { "data-star": s, "data-count": n });
      row.appendChild(el("span", { "class": "rw-hist-label" }, plural(s, "star", "stars")));
      row.appendChild(el("progress", { max: Math.max(agg.review_count, 1), value: n,
        "aria-label": n + " reviews with " + s + " stars" }));
      row.appendChild(el("span", { "class": "rw-hist-count" }, n));
      hist.appendChild(row);
    }
    box.appendChild(hist);
    box.appendChild(el("p", { "class": "rw-hist-note" }, "Half-star ratings count in the bar below."));
    return box;
  }

  function renderNotShown(doc) {
    var w = doc.withheld;
    if (!w.count) return el("p", { "class": "rw-not-shown", "data-role": "not-shown", "data-count": 0 },
      "Every review we received for this product is shown.");
    var parts = Object.keys(w.by_reason).sort().map(function (code) {
      return w.by_reason[code] + " " + reasonText(code);
    });
    return el("p", { "class": "rw-not-shown", "data-role": "not-shown", "data-count": w.count },
      plural(w.count, "review", "reviews") + " not shown: " + parts.join(", ") + ".");
  }

  function renderModeration(doc) {
    var details = el("details", { "class": "rw-moderation", "data-role": "moderation" });
    details.appendChild(el("summary", null, "How we moderate reviews"));
    var policy = doc.moderation && doc.moderation.policy;
    var lines = [
      "We publish positive and negative reviews alike. A review is withheld only for reasons that do " +
        "not depend on its rating or opinion, and the number of withheld reviews and the reasons are shown above.",
      "\u201cVerified purchase\u201d means our order records show that the reviewer bought this product. " +
        "Reviews without that badge have not been checked against a purchase.",
      "Badges also tell you when a reviewer received an incentive, works for us or for the brand, or " +
        "when a review was first posted on a partner site.",
      "Reviews are sorted by most recent first unless you choose another order. Each review shown has been " +
        "checked to be exactly as our moderation published it.",
      "Automated fake-review detection: " + detectorsText(doc.moderation) + "."
    ];
    if (policy) lines.push("Moderation policy: " + policy.id + " " + policy.version + ".");
    lines.forEach(function (t) { details.appendChild(el("p", null, t)); });
    return details;
  }

  function detectorsText(moderation) {
    var ds = (moderation && moderation.detectors) || [];
    var scored = ds.filter(function (d) { return d.status === "scored"; });
    if (!ds.length || !scored.length) return "not used for these reviews";
    return "used (" + scored.map(function (d) { return d.id.replace(/_/g, " "); }).join(", ") + ")";
  }

  function renderReview(r) {
    var li = el("li", { "class": "rw-review", "data-role": "review", "data-review-id": r.review_id,
      "data-rating": r.rating, lang: r.language || null });
    var head = el("div", { "class": "rw-review-head" });
    head.appendChild(el("span", { "class": "rw-stars", "aria-label": r.rating + " out of 5 stars",
      "data-role": "stars" }, stars(r.rating)));
    head.appendChild(el("span", { "class": "rw-rating" }, r.rating + "/5"));
    if (r.title) head.appendChild(el("strong", { "class": "rw-title", "data-role": "title" }, r.title));
    var date = new Date(r.created_at);
    head.appendChild(el("time", { datetime: r.created_at, "class": "rw-date" },
      isNaN(date.getTime()) ? r.created_at : date.toISOString().slice(0, 10)));
    li.appendChild(head);
    if (r.badges && r.badges.length) {
      var badges = el("ul", { "class": "rw-badges" });
      r.badges.forEach(function (b) {
        badges.appendChild(el("li", { "class": "rw-badge rw-badge-" + b.code, "data-badge": b.code }, b.text));
      });
      li.appendChild(badges);
    }
    li.appendChild(el("p", { "class": "rw-body", "data-role": "body" }, r.body));
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

  function Widget(root, doc) {
    this.root = root;
    this.doc = doc;
    this.pageSize = Math.max(1, parseInt(root.getAttribute("data-page-size"), 10) || 10);
    this.sort = "recent";
    this.page = 0;
  }

  Widget.prototype.sorted = function () {
    return this.doc.reviews.slice().sort(SORTS[this.sort].compare);
  };

  Widget.prototype.render = function () {
    var self = this, doc = this.doc;
    var root = this.root;
    while (root.firstChild) root.removeChild(root.firstChild);
    root.classList.add("rw");
    root.appendChild(el("h2", { "class": "rw-heading" }, "Customer reviews"));
    root.appendChild(renderSummary(doc));
    root.appendChild(renderNotShown(doc));
    root.appendChild(renderModeration(doc));

    var controls = el("div", { "class": "rw-controls" });
    var label = el("label", { "for": "rw-sort-" + uid(root) }, "Sort by ");
    var select = el("select", { id: "rw-sort-" + uid(root), "data-role": "sort" });
    Object.keys(SORTS).forEach(function (key) {
      var opt = el("option", { value: key }, SORTS[key].label);
      if (key === self.sort) opt.selected = true;
      select.appendChild(opt);
    });
    select.addEventListener("change", function () { self.sort = select.value; self.page = 0; self.renderList(); });
    label.appendChild(select);
    controls.appendChild(label);
    root.appendChild(controls);

    this.list = el("ol", { "class": "rw-list", "data-role": "reviews" });
    root.appendChild(this.list);
    var pager = el("nav", { "class": "rw-pager", "aria-label": "Review pages" });
    this.prev = el("button", { type: "button", "data-role": "prev" }, "Previous");
    this.pageInfo = el("span", { "data-role": "page-info", "aria-live": "polite" });
    this.next = el("button", { type: "button", "data-role": "next" }, "Next");
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
    var list = this.list;
    while (list.firstChild) list.removeChild(list.firstChild);
    var start = this.page * this.pageSize;
    var shown = this.sorted().slice(start, start + this.pageSize);
    shown.forEach(function (r) { list.appendChild(renderReview(r)); });
    if (!this.doc.reviews.length) list.appendChild(el("li", { "class": "rw-empty" }, "No reviews yet."));
    this.pageInfo.textContent = "Page " + (this.page + 1) + " of " + this.pages();
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

  function mount(root) {
    var productId = root.getAttribute("data-product-id");
    var api = (root.getAttribute("data-api") || "").replace(/\/$/, "");
    root.setAttribute("data-state", "loading");
    root.textContent = "Loading reviews\u2026";
    return fetch(api + "/api/reviews?product_id=" + encodeURIComponent(productId || ""), {
      headers: { Accept: "application/json" }, credentials: "omit"
    }).then(function (resp) {
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      return resp.json();
    }).then(function (doc) {
      var widget = new Widget(root, doc);
      widget.render();
      addJsonLd(doc, root.getAttribute("data-product-name"));
      root.__reviewWidget = widget;
      return widget;
    }).catch(function (err) {
      root.textContent = "Reviews could not be loaded (" + err.message + ").";
      root.setAttribute("data-state", "error");
    });
  }

  function mountAll() {
    var roots = document.querySelectorAll("[data-review-widget]");
    return Promise.all(Array.prototype.map.call(roots, mount));
  }

  window.ReviewWidget = { mount: mount, mountAll: mountAll };
  if (!document.currentScript || document.currentScript.getAttribute("data-manual") === null) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
    else mountAll();
  }
})();
