// Live progress of Geti imports on /geti/: polls the jobs API once a second while any job on
// the page is queued or running, and updates each row's state, progress bar and result.
(function () {
  "use strict";

  function formatBytes(n) {
    if (n === null || n === undefined) return "";
    var units = ["bytes", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + "\u00a0" + units[i];
  }

  function update(row, job) {
    row.dataset.state = job.state;
    row.querySelector(".job-state").textContent = job.state;
    var bar = row.querySelector("progress");
    if (job.progress === null) bar.removeAttribute("value"); else bar.value = job.progress;
    row.querySelector(".job-bytes").textContent =
      formatBytes(job.bytes_done) + (job.bytes_total ? " / " + formatBytes(job.bytes_total) : "");
    var result = row.querySelector(".job-result");
    if (job.artifact) {
      var link = document.createElement("a");
      link.href = job.artifact.url;
      link.textContent = job.artifact.registered_model + ":" + job.artifact.version;
      result.replaceChildren(link);
    } else if (job.error) {
      var span = document.createElement("span");
      span.className = "geti-error";
      span.textContent = job.error;
      result.replaceChildren(span);
    }
  }

  function poll() {
    var table = document.getElementById("geti-jobs");
    if (!table) return;
    var active = table.querySelectorAll('tr[data-state="queued"], tr[data-state="running"]');
    if (!active.length) return;
    var ids = Array.prototype.map.call(active, function (row) { return row.dataset.jobId; });
    var url = table.dataset.api + "?page_size=100&id=" + encodeURIComponent(ids.join(","));
    fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) {
          data.results.forEach(function (job) {
            var row = table.querySelector('tr[data-job-id="' + job.id + '"]');
            if (row) update(row, job);
          });
        }
      })
      .catch(function () { /* the next poll tries again */ })
      .finally(function () { setTimeout(poll, 1000); });
  }

  document.addEventListener("DOMContentLoaded", function () { setTimeout(poll, 1000); });
})();
