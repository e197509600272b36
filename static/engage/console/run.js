// A campaign run's page (templates/admin/engage/campaignrun/change_form.html): refresh the progress bar
// and the funnel every two seconds until the run is done, then reload once for the final summary.
(function () {
  "use strict";
  const panel = document.getElementById("run-panel");
  if (!panel) return;
  const set = (id, value) => { const node = document.getElementById(id); if (node) node.textContent = String(value); };

  function drawFunnel() {
    const bars = Array.from(document.querySelectorAll(".funnel-bar"));
    const top = Math.max(1, ...bars.map((bar) => Number(bar.dataset.count)));
    bars.forEach((bar) => { bar.style.width = (Number(bar.dataset.count) * 100 / top) + "%"; });
  }

  async function refresh() {
    const response = await fetch(panel.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const progress = await response.json();
    set("run-status", progress.status_label);
    ["sent", "skipped", "failed", "rendered", "total"].forEach((key) => set("run-" + key, progress[key]));
    document.getElementById("run-bar-fill").style.width = progress.percent + "%";
    document.getElementById("run-bar").setAttribute("aria-valuenow", String(progress.percent));
    progress.funnel.forEach((step, index) => {
      const bar = document.querySelectorAll(".funnel-bar")[index];
      if (bar) { bar.dataset.count = step.count; bar.nextElementSibling.textContent = String(step.count); }
    });
    drawFunnel();
    if (progress.is_finished) {
      if (panel.dataset.finished !== "1") location.reload();
      return;
    }
    setTimeout(refresh, 2000);
  }

  drawFunnel();
  if (panel.dataset.finished !== "1") setTimeout(refresh, 2000);
})();
