(function () {
  "use strict";
  var table = document.getElementById("results");
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function key(row, i, num) {
    var cell = row.cells[i];
    if (!cell) return num ? NaN : "";
    var v = cell.getAttribute("data-v");
    if (v === null) v = cell.textContent;
    if (!num) return v.toLowerCase();
    return v === "" ? NaN : parseFloat(v);
  }
  function sortBy(th, i, num) {
    // First click: numbers high-first (most suspicious on top), text A-Z; then toggle.
    var now = th.getAttribute("aria-sort");
    var dir = now ? (now === "ascending" ? -1 : 1) : (num ? -1 : 1);
    Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var rows = Array.prototype.map.call(body.rows, function (r, n) { return [key(r, i, num), n, r]; });
    rows.sort(function (a, b) {
      var x = a[0], y = b[0];
      if (num) {
        var xn = isNaN(x), yn = isNaN(y);
        if (xn || yn) return (xn - yn) || (a[1] - b[1]); // missing values always last
        return (x - y) * dir || (a[1] - b[1]);
      }
      return (x < y ? -1 : x > y ? 1 : 0) * dir || (a[1] - b[1]);
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r[2]); });
    body.appendChild(frag);
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    var kind = th.getAttribute("data-sort");
    if (!kind) return;
    th.tabIndex = 0;
    var go = function () { sortBy(th, i, kind === "num"); };
    th.addEventListener("click", go);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); }
    });
  });
  var filter = document.getElementById("filter");
  filter.addEventListener("change", function () { table.setAttribute("data-filter", filter.value); });
  var heat = document.getElementById("heat");
  heat.addEventListener("change", function () { document.body.classList.toggle("noheat", !heat.checked); });
})();
