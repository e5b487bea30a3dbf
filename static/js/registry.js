/*
 * Small enhancements for every page: copy buttons, and compare pickers that say how many
 * items are ticked. Pages work without it; the server checks the selection anyway.
 */
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // Plain-HTTP deployments have no clipboard API: fall back to a selected textarea.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (!source) return;
    copyText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
      button.classList.add("done");
    }, function () {
      button.textContent = "Select and copy";
    });
    setTimeout(function () { button.textContent = "Copy"; button.classList.remove("done"); }, 2000);
  });

  function updatePicker(form) {
    var ticked = form.querySelectorAll("input.pick:checked").length;
    var button = form.querySelector(".compare-button");
    if (!button) return;
    button.disabled = ticked < 2 || ticked > 4;
    button.textContent = ticked ? "Compare " + ticked + " selected" : "Compare selected";
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches("input.pick")) updatePicker(event.target.form);
    // Selects that apply at once (sort, the matrix's version); their forms keep a button without JS.
    if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
  });

  function humanSize(bytes) {
    var units = ["bytes", "KB", "MB", "GB", "TB"], i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
    return (i ? bytes.toFixed(1) : bytes) + "\u00a0" + units[i];
  }

  function showResolved(output, parts) {
    output.textContent = "";
    parts.forEach(function (part) { output.appendChild(part); });
    output.hidden = false;
  }

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    return node;
  }

  // Beside an alias: ask the resolve API which file a device would get, and show its name, size
  // and sha256 before offering the download of exactly that file.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form.resolve")) return;
    event.preventDefault();
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) { if (value) params.append(key, value); });
    var output = form.querySelector("output.resolved");
    fetch(form.action + "?" + params.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json().then(function (body) { return [response.ok, body]; }); })
      .then(function (result) {
        var ok = result[0], body = result[1];
        if (!ok) {
          showResolved(output, [el("span", (body.error && body.error.message) || "No variant matches.", { class: "error" })]);
          return;
        }
        var a = body.artifact;
        var name = a.original_filename || (body.registered_model + "-" + body.version + ".bin");
        showResolved(output, [
          el("span", a.precision + " · " + a.target_device + " · " + a.format + " of " + body.version + ": ", { class: "variant-key" }),
          el("strong", name),
          el("span", " · " + humanSize(a.size) + " · sha256 "),
          el("code", a.sha256.slice(0, 12) + "…", { title: a.sha256, class: "sha" }),
          el("span", " "),
          el("a", "Download", { href: a.download_url, class: "button primary", download: "" }),
        ]);
      })
      .catch(function () { showResolved(output, [el("span", "The registry did not answer.", { class: "error" })]); });
  });

  // Rows that unfold: a button with aria-controls shows or hides the row it names.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-unfold]");
    if (!button) return;
    var target = document.getElementById(button.getAttribute("aria-controls"));
    if (!target) return;
    var open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    target.hidden = !open;
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.compare-picker").forEach(updatePicker);
    document.querySelectorAll(".js-hide").forEach(function (node) { node.hidden = true; });
    // On a phone the filters start folded, so the results are what the page opens on, unless
    // some are chosen: those stay in view so they can be changed or cleared.
    if (window.matchMedia("(max-width: 760px)").matches) {
      document.querySelectorAll(".facets details").forEach(function (d) {
        if (!d.querySelector(".selected")) d.open = false;
      });
    }
  });
})();
