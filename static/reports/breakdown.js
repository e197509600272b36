/* A breakdown's chart: the first two metrics of each segment as bars (the table under it has them all). */
(function () {
  "use strict";
  var source = document.getElementById("breakdown-data");
  var root = document.getElementById("reports-breakdown");
  var canvas = document.getElementById("breakdown-chart");
  if (!source || !root || !canvas || typeof Chart === "undefined") { return; }
  var rows = JSON.parse(source.textContent);
  var metrics = root.getAttribute("data-card") === "workers" ? ["on_time", "late"] : ["sent", "booked"];
  var colors = ["#2563eb", "#f59e0b"];
  new Chart(canvas, {
    type: "bar",
    data: { labels: rows.map(function (row) { return row.segment; }),
            datasets: metrics.map(function (metric, index) {
              return { label: metric, data: rows.map(function (row) { return row[metric]; }), backgroundColor: colors[index] };
            }) },
    options: { animation: false, maintainAspectRatio: false, responsive: true, scales: { y: { beginAtZero: true } } }
  });
  root.setAttribute("data-charts", "ready");
})();
