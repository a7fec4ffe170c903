// Upload a log from the list page: file picker or drag and drop, with upload progress,
// then open the diagnosis page. Without JavaScript the form posts as a plain form.
"use strict";

const form = document.getElementById("upload-form");

if (form) {
  const input = form.querySelector('input[type="file"]');
  const zone = form;
  const progress = form.querySelector("progress");
  const status = form.querySelector(".upload-status");
  const submit = form.querySelector('button[type="submit"]');

  const formatBytes = (bytes) => {
    const units = ["B", "KB", "MB", "GB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
  };

  const say = (text, isError = false) => {
    status.textContent = text;
    status.classList.toggle("error", isError);
  };

  const upload = (file) => {
    if (!file) return;
    const body = new FormData();
    body.append("file", file, file.name);
    for (const field of form.querySelectorAll("input[data-meta]")) {
      if (field.value.trim()) body.append(field.name, field.value.trim());
    }
    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.api);
    request.setRequestHeader("Accept", "application/json");
    request.responseType = "json";
    progress.hidden = false;
    progress.removeAttribute("value");
    submit.disabled = true;
    say(`Uploading ${file.name} (${formatBytes(file.size)})…`);
    request.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      progress.max = event.total;
      progress.value = event.loaded;
      const percent = Math.round((100 * event.loaded) / event.total);
      say(`Uploading ${file.name}: ${percent} % of ${formatBytes(event.total)}`);
    });
    request.upload.addEventListener("load", () => {
      progress.removeAttribute("value");
      say(`Uploaded ${file.name}; reading the log…`);
    });
    request.addEventListener("load", () => {
      const answer = request.response || {};
      if (request.status >= 200 && request.status < 300 && answer.id !== undefined) {
        say("Done: opening the diagnosis…");
        window.location.assign(`${form.dataset.pages}/${encodeURIComponent(answer.id)}`);
        return;
      }
      const message = answer.error ? answer.error.message : `the server answered ${request.status}`;
      progress.hidden = true;
      submit.disabled = false;
      say(`Could not diagnose ${file.name}: ${message}`, true);
    });
    request.addEventListener("error", () => {
      progress.hidden = true;
      submit.disabled = false;
      say("The upload failed: the server could not be reached.", true);
    });
    request.send(body);
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.files.length) upload(input.files[0]);
    else input.click();
  });
  input.addEventListener("change", () => upload(input.files[0]));

  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) upload(file);
  });
}
