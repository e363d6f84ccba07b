// The Analyze page: pick or drop a video, send it with the parameters (XHR, for upload
// progress), then open the job's live view.
"use strict";
(function () {
  const form = document.getElementById("analyze-form");
  const input = document.getElementById("file-input");
  const dropzone = document.getElementById("dropzone");
  const fileName = document.getElementById("file-name");
  const submit = document.getElementById("submit");
  const errorBox = document.getElementById("form-error");
  const progress = document.getElementById("upload-progress");
  const bar = progress.querySelector(".progress-bar");
  let file = null;

  const maxBytes = Number(form.dataset.maxBytes);

  function choose(f) {
    file = f || null;
    fileName.textContent = file ? file.name + " · " + (file.size / 1048576).toFixed(1) + " MB" : "";
    showError("");
    // The server enforces the limit too; refusing here saves sending a file it would refuse.
    if (file && maxBytes && file.size > maxBytes) {
      showError("This file is larger than the upload limit of " + (maxBytes / 1048576) + " MB.");
      file = null;
    }
    submit.disabled = !file;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  input.addEventListener("change", function () { choose(input.files[0]); });
  ["dragenter", "dragover"].forEach(function (type) {
    dropzone.addEventListener(type, function (e) { e.preventDefault(); dropzone.classList.add("dragover"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    dropzone.addEventListener(type, function (e) { e.preventDefault(); dropzone.classList.remove("dragover"); });
  });
  dropzone.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });

  function send() {
    const data = new FormData();
    // Fields first, the file last: the server sees the parameters before the bulk of the body.
    ["frames", "sampling", "max_tokens", "min_tokens", "resize", "model", "prompt"].forEach(function (name) {
      data.append(name, form.elements[name].value);
    });
    if (form.elements.timeline && form.elements.timeline.checked) data.append("timeline", "on");
    data.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/analyze");
    xhr.setRequestHeader("Accept", "application/json");
    progress.hidden = false;
    bar.style.width = "0%";
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) bar.style.width = (100 * e.loaded / e.total).toFixed(1) + "%";
    });
    xhr.addEventListener("load", function () {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (ignored) { /* not JSON */ }
      if (xhr.status === 202) { window.location.href = body.page_url; return; }
      if (xhr.status === 401) { window.chronicon.logIn(); return; }
      submit.disabled = false;
      progress.hidden = true;
      showError(body.error || ("Upload failed (" + xhr.status + ")"));
      if (body.field && form.elements[body.field]) form.elements[body.field].focus();
    });
    xhr.addEventListener("error", function () {
      submit.disabled = false;
      progress.hidden = true;
      showError("The upload was interrupted (is the file larger than the limit, or the server down?)");
    });
    xhr.send(data);
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!file) return;
    submit.disabled = true;
    showError("");
    send();
  });
})();
