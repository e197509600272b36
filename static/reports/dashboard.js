/* The manager dashboard's charts (Chart.js, vendored in static/vendor/chartjs) and its refresh every minute.
   The numbers come from the page (json_script "reports-data"), already downsampled by the server. */
(function () {
  "use strict";
  var root = document.getElementById("reports-dashboard");
  var source = document.getElementById("reports-data");
  if (!root || !source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var palette = ["#2563eb", "#16a34a", "#f59e0b", "#db2777", "#7c3aed", "#0891b2", "#dc2626"];
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.labels.boxWidth = 10;

  function draw(id, type, labels, datasets, extra) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    var sets = Object.keys(datasets).map(function (name, index) {
      return { label: name, data: datasets[name], borderColor: palette[index % palette.length],
               backgroundColor: palette[index % palette.length], tension: 0.2, pointRadius: 1, fill: false };
    });
    canvas.chart = new Chart(canvas, Object.assign({ type: type, data: { labels: labels, datasets: sets },
      options: { responsive: true, scales: { y: { beginAtZero: true } } } }, extra || {}));
  }
  function pick(rows, label, value) {
    return { labels: rows.map(function (row) { return row[label] || "-"; }),
             values: rows.map(function (row) { return row[value]; }) };
  }

  var engagement = data.engagement;
  if (engagement) {
    var funnel = pick(engagement.funnel, "step", "value");
    draw("chart-engagement", "bar", funnel.labels, { funnel: funnel.values });
    draw("chart2-engagement", "line", engagement.series.labels, engagement.series.datasets);
  }
  if (data.ai) { draw("chart-ai", "line", data.ai.series.labels, data.ai.series.datasets); }
  if (data.leads) {
    var sources = pick(data.leads.by_source, "source", "new");
    draw("chart-leads", "bar", sources.labels, { "new by source": sources.values });
    var stages = pick(data.leads.stages, "stage_name", "leads");
    draw("chart2-leads", "bar", stages.labels, { "leads by stage": stages.values }, { options: { indexAxis: "y" } });
  }
  if (data.workers) {
    draw("chart-workers", "line", data.workers.series.labels, { "on-time %": data.workers.series.datasets.on_time_rate });
  }
  if (data.operations) {
    var failures = pick(data.operations.delivery_failures, "channel", "failed");
    draw("chart-operations", "bar", failures.labels, { "delivery failures": failures.values });
  }
  root.setAttribute("data-charts", "ready");

  var seconds = parseInt(root.getAttribute("data-refresh-seconds"), 10) || 60;
  window.setInterval(function () {
    if (document.visibilityState === "visible") { window.location.reload(); }
  }, seconds * 1000);
})();
