/* The example page: picks a product (?product_id=... or the one with most reviews) and mounts the widget. */
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var root = document.getElementById("reviews");
  var picker = document.getElementById("product-picker");
  var heading = document.getElementById("product-name");

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
      window.location.search = "?product_id=" + encodeURIComponent(picker.value);
    });
    heading.textContent = wanted;
    document.title = wanted + " – Example Shop";
    root.setAttribute("data-product-id", wanted);
    root.setAttribute("data-product-name", wanted);
    window.ReviewWidget.mount(root);
  });
})();
