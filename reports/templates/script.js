// The report works without this script; it only filters tables and opens details.
(function () {
  "use strict";
  function filterRows(box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    if (!table) { return; }
    var rows = table.querySelectorAll("tbody tr");
    for (var i = 0; i < rows.length; i++) {
      var bad = rows[i].getAttribute("data-ok") === "false";
      rows[i].classList.toggle("hidden", box.checked && !bad);
    }
  }
  var boxes = document.querySelectorAll("input[data-table]");
  for (var i = 0; i < boxes.length; i++) {
    boxes[i].addEventListener("change", function (ev) { filterRows(ev.target); });
  }
  var expand = document.getElementById("expand-all");
  if (expand) {
    expand.addEventListener("click", function () {
      var all = document.querySelectorAll("details");
      var open = expand.getAttribute("data-open") !== "true";
      for (var j = 0; j < all.length; j++) { all[j].open = open; }
      expand.setAttribute("data-open", open ? "true" : "false");
      expand.textContent = open ? "collapse all" : "expand all";
    });
  }
  document.documentElement.setAttribute("data-ready", "true");
})();
