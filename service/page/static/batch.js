// The page's batch section: upload a file as a job, poll the job document until the job ends, show its result.
// A file of its own: the CSP allows no inline script. Same-origin fetches (the service refuses other origins).
"use strict";
(function () {
  const POLL_MS = 300;
  const form = document.getElementById("batch");
  if (!form) return;
  const TERMINAL = form.dataset.terminal.split(" "); // the states a job ends in, from service.batch.states
  const jobs = form.dataset.jobs;
  const $ = (id) => document.getElementById(id);

  function headers() {
    const token = $("batch-token") ? $("batch-token").value.trim() : "";
    return token ? { Authorization: "Bearer " + token } : {};
  }

  async function call(url, options) {
    const response = await fetch(url, Object.assign({ headers: headers(), cache: "no-store" }, options || {}));
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(response.status + ": " + (body.detail || body.title || response.statusText));
    }
    return body;
  }

  function showError(message) {
    const box = $("batch-error");
    box.textContent = message;
    box.hidden = false;
  }

  function showState(job) {
    $("batch-state").textContent = job.state + (job.reason ? " (" + job.reason + ")" : "");
    const progress = job.progress;  // the map stage's shards (issue 22)
    $("batch-progress").textContent =
      progress.shards_done + " of " + progress.shards + " (" + progress.bytes_done + " bytes)";
    const seen = $("batch-states");
    const last = seen.lastElementChild;
    if (!last || last.textContent !== job.state) {
      const item = document.createElement("li");
      item.textContent = job.state;
      seen.appendChild(item);
    }
  }

  function showResult(result) {
    $("batch-bytes").textContent = result.bytes;
    $("batch-tokens").textContent = result.tokens;
    $("batch-unique").textContent = result.unique;
    const rows = $("batch-top-words").tBodies[0];
    rows.replaceChildren();
    for (const entry of result.counts) {
      const row = rows.insertRow();
      row.insertCell().textContent = entry.word; // text, never markup: words come from the upload
      row.insertCell().textContent = entry.count;
    }
    $("batch-result").hidden = false;
  }

  async function follow(job) {
    while (!TERMINAL.includes(job.state)) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      job = await call(jobs + "/" + encodeURIComponent(job.id));
      showState(job);
    }
    if (job.state === "succeeded") {
      showResult(await call(job.result + "?limit=10"));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("batch-file").files[0];
    $("batch-error").hidden = true;
    $("batch-job").hidden = true;
    $("batch-result").hidden = true;
    $("batch-states").replaceChildren();
    if (!file) {
      showError("Choose a file first");
      return;
    }
    const button = $("batch-start");
    button.disabled = true;
    try {
      const upload = new FormData();
      upload.append("file", file);
      const job = await call(jobs, { method: "POST", body: upload });
      $("batch-id").textContent = job.id;
      $("batch-job").hidden = false;
      showState(job);
      await follow(job);
    } catch (error) {
      showError(error.message);
    } finally {
      button.disabled = false;
    }
  });
})();
