// The progress bar of a running import (templates/admin/crm/feed/import_status.html): polls the
// record's progress once a second and reloads the page when the import has finished.
(function () {
  "use strict";
  function start() {
    var box = document.getElementById("feed-progress");
    if (!box || box.dataset.finished) { return; }
    var url = box.dataset.progressUrl;
    function set(selector, value) {
      var element = box.querySelector(selector);
      if (element) { element.textContent = value; }
    }
    function poll() {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.json(); })
        .then(function (progress) {
          box.querySelector("progress").value = progress.percent;
          set(".feed-processed", progress.processed_rows);
          set(".feed-percent", progress.percent);
          set(".feed-created", progress.created);
          set(".feed-updated", progress.updated);
          set(".feed-unchanged", progress.unchanged);
          set(".feed-errors-count", progress.errors);
          var status = document.getElementById("feed-status");
          if (status) { status.textContent = progress.status_label; }
          if (progress.is_finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, 500);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
