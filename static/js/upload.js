/*
 * The upload page: sends the form to the artifacts API with a real progress bar, shows the
 * API's validation errors next to their fields, and opens the version page on success.
 *
 * send() is the one place that decides how a file travels: through the API in one multipart
 * request (sendViaApi), or, from the direct-upload threshold up, straight to S3 in parts
 * (sendDirect, using direct-upload.js).
 */
(function () {
  "use strict";

  /** POST formData to url with XMLHttpRequest (fetch reports no upload progress).
   *  Resolves with {status, body}; rejects only when the request could not be made. */
  function sendViaApi(url, formData, options) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRFToken", options.csrfToken);
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable && options.onProgress) options.onProgress(event.loaded, event.total);
      });
      xhr.upload.addEventListener("load", function () {
        if (options.onSent) options.onSent();
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        resolve({ status: xhr.status, body: body });
      });
      xhr.addEventListener("error", function () { reject(new Error("The connection failed.")); });
      xhr.addEventListener("abort", function () { reject(new Error("The upload was cancelled.")); });
      xhr.send(formData);
    });
  }

  /** Choose the transport for this file and send it: files from the form's direct-upload
   *  threshold up (set only when the registry stores files on S3) go straight to storage in
   *  parts through /api/v1/uploads/ (direct-upload.js); smaller ones in one multipart POST. */
  function send(form, formData, options) {
    var file = formData.get("file");
    var threshold = parseInt(form.dataset.directThreshold || "0", 10);
    if (threshold && file && file.size >= threshold && window.RegistryDirectUpload) {
      return sendDirect(form, formData, file, options);
    }
    return sendViaApi(form.action, formData, options);
  }

  // Fields the API takes as JSON: collect() sends them as JSON text, a JSON body needs values.
  var JSON_FIELDS = ["labels", "overview", "tags", "provenance", "optimization_capabilities"];

  /** The same answer shape as sendViaApi ({status, body}), from a direct upload. */
  function sendDirect(form, formData, file, options) {
    var metadata = {};
    formData.forEach(function (value, name) {
      if (name === "file") return;
      if (JSON_FIELDS.indexOf(name) >= 0) {
        try { value = JSON.parse(value); } catch (e) { /* left as text: the API explains */ }
      }
      metadata[name] = value;
    });
    return window.RegistryDirectUpload.directUpload(file, metadata, {
      api: form.dataset.directUrl,
      csrfToken: options.csrfToken,
      onProgress: options.onProgress,
      onSent: options.onSent
    }).then(function (artifact) {
      return { status: 201, body: artifact };
    }, function (error) {
      if (error && error.status) {
        return { status: error.status, body: { error: { code: error.code, message: error.message, fields: error.fields } } };
      }
      throw error;
    });
  }

  /** The form as multipart data the API understands: lists and mappings typed as text are sent
   *  as JSON, empty optional fields are left out so the API applies its defaults. */
  function collect(form) {
    var data = new FormData();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || el.name === "csrfmiddlewaretoken") return;
      if (el.type === "file") {
        if (el.files.length) data.append(el.name, el.files[0]);
        return;
      }
      var value = el.value.trim();
      if (value === "") return;
      if (el.dataset.list !== undefined) {
        value = JSON.stringify(value.split(",").map(function (s) { return s.trim(); }).filter(Boolean));
      } else if (el.dataset.mapping !== undefined) {
        var mapping = {};
        value.split(",").forEach(function (pair) {
          var at = pair.indexOf(":");
          var key = (at < 0 ? pair : pair.slice(0, at)).trim();
          if (key) mapping[key] = at < 0 ? "" : pair.slice(at + 1).trim();
        });
        value = JSON.stringify(mapping);
      }
      data.append(el.name, value);
    });
    return data;
  }

  function formatBytes(n) {
    var units = ["bytes", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  function clearErrors(form, banner) {
    form.querySelectorAll(".field-error").forEach(function (p) { p.textContent = ""; });
    form.querySelectorAll(".field.invalid").forEach(function (f) { f.classList.remove("invalid"); });
    banner.hidden = true;
    banner.textContent = "";
  }

  /** Put each field's messages under its input; the rest (and the summary) in the banner. */
  function showErrors(form, banner, error) {
    var fields = (error && error.fields) || {};
    var leftover = [];
    Object.keys(fields).forEach(function (name) {
      var messages = fields[name];
      var text = Array.isArray(messages) ? messages.join(" ") : JSON.stringify(messages);
      var slot = form.querySelector('[data-error-for="' + name + '"]');
      if (slot) {
        slot.textContent = text;
        slot.closest(".field").classList.add("invalid");
      } else {
        leftover.push(name === "non_field_errors" ? text : name + ": " + text);
      }
    });
    var message = (error && error.message) || "The upload failed.";
    if (leftover.length) message += " " + leftover.join(" ");
    else if (Object.keys(fields).length) message += " Check the highlighted fields.";
    banner.textContent = message;
    banner.hidden = false;
    var first = form.querySelector(".field.invalid input, .field.invalid select, .field.invalid textarea");
    (first || banner).scrollIntoView({ block: "center" });
    if (first) first.focus();
  }

  function bind(form) {
    var banner = document.getElementById("upload-error");
    var status = document.getElementById("upload-status");
    var bar = document.getElementById("upload-progress");
    var text = document.getElementById("upload-progress-text");
    var button = document.getElementById("upload-submit");
    var maxBytes = parseInt(form.dataset.maxBytes, 10);

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(form, banner);
      var file = form.elements.file.files[0];
      if (!file) {
        showErrors(form, banner, { message: "Invalid input.", fields: { file: ["Choose a file to upload."] } });
        return;
      }
      if (maxBytes && file.size > maxBytes) {
        showErrors(form, banner, { message: "The file is too large.",
          fields: { file: ["The file is " + formatBytes(file.size) + "; the limit is " + formatBytes(maxBytes) + "."] } });
        return;
      }
      var events = 0;
      button.disabled = true;
      status.hidden = false;
      status.dataset.state = "sending";
      bar.value = 0;
      text.textContent = "Starting…";
      send(form, collect(form), {
        csrfToken: form.elements.csrfmiddlewaretoken.value,
        onProgress: function (loaded, total) {
          events += 1;
          status.dataset.events = events;
          var percent = total ? Math.floor((loaded / total) * 100) : 0;
          bar.value = percent;
          text.textContent = percent + "% · " + formatBytes(loaded) + " of " + formatBytes(total);
        },
        onSent: function () {
          bar.value = 100;
          status.dataset.state = "stored";
          text.textContent = "100% · checking and storing on the server…";
        }
      }).then(function (result) {
        if (result.status === 201 && result.body) {
          status.dataset.state = "done";
          text.textContent = "Done. Opening the version…";
          var url = form.dataset.versionUrl
            .replace("__model__", encodeURIComponent(result.body.registered_model))
            .replace("__version__", encodeURIComponent(result.body.version));
          window.location.assign(url + "#variant-" + result.body.id);
          return;
        }
        status.dataset.state = "failed";
        status.hidden = true;
        button.disabled = false;
        var error = result.body && result.body.error;
        showErrors(form, banner, error || { message: "The server answered " + result.status + "." });
      }, function (err) {
        status.dataset.state = "failed";
        status.hidden = true;
        button.disabled = false;
        showErrors(form, banner, { message: err.message });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (form) bind(form);
  });
})();
