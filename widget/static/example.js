/* The example page: picks a product (?product_id=... or the one with most reviews) and mounts the widget.
   ?locale=ja (or the Language picker) sets the widget's data-locale; without it the widget follows
   the server's --locale, then the page's <html lang>, then the browser's languages. */
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var root = document.getElementById("reviews");
  var picker = document.getElementById("product-picker");
  var localePicker = document.getElementById("locale-picker");
  var heading = document.getElementById("product-name");
  var LOCALES = { "": "auto", en: "English", ja: "日本語", ko: "한국어", "zh-Hans": "简体中文", "zh-Hant": "繁體中文" };

  if (params.get("locale")) root.setAttribute("data-locale", params.get("locale"));
  var current = root.getAttribute("data-locale") || "";
  Object.keys(LOCALES).forEach(function (code) {
    var opt = document.createElement("option");
    opt.value = code;
    opt.textContent = LOCALES[code];
    if (code === current) opt.selected = true;
    localePicker.appendChild(opt);
  });
  localePicker.addEventListener("change", function () {
    if (localePicker.value) params.set("locale", localePicker.value); else params.delete("locale");
    window.location.search = "?" + params.toString();
  });

  fetch("/api/products").then(function (r) { return r.json(); }).then(function (data) {
    var products = data.products || [];
    var wanted = params.get("product_id") || (products[0] && products[0].product_id) || "";
    products.forEach(function (p) {
      var opt = document.createElement("option");
      opt.value = p.product_id;
      opt.textContent = p.product_id + " (" + p.review_count + ")";
      if (p.product_id === wanted) opt.selected = true;
      picker.appendChild(opt);
    });
    picker.addEventListener("change", function () {
      params.set("product_id", picker.value);
      window.location.search = "?" + params.toString();
    });
    heading.textContent = wanted;
    document.title = wanted + " – Example Shop";
    root.setAttribute("data-product-id", wanted);
    root.setAttribute("data-product-name", wanted);
    window.ReviewWidget.mount(root);
  });
})();
