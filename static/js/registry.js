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
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.compare-picker").forEach(updatePicker);
    // On a phone the filters start folded, so the results are what the page opens on, unless
    // some are chosen: those stay in view so they can be changed or cleared.
    if (window.matchMedia("(max-width: 760px)").matches) {
      document.querySelectorAll(".facets details").forEach(function (d) {
        if (!d.querySelector(".selected")) d.open = false;
      });
    }
  });
})();
