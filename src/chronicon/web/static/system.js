// The System page: refresh health and the job list every few seconds.
"use strict";
(function () {
  const { el, api, time } = window.chronicon;

  function renderJobs(items) {
    const body = document.querySelector("#jobs-table tbody");
    body.textContent = "";
    if (!items.length) { body.appendChild(el("tr", {}, el("td", { colSpan: 5, className: "muted" }, "No jobs yet."))); return; }
    items.forEach(function (j) {
      const link = el("a", { href: "/jobs/" + j.id }, "open");
      body.appendChild(el("tr", {}, el("td", {}, time(j.created_at)), el("td", { className: "filename" }, j.video_filename || ""),
        el("td", {}, el("span", { className: "badge state-" + j.state }, j.state)), el("td", {}, j.position || ""), el("td", {}, link)));
    });
  }

  // Remote workers (CHRONICON_QUEUE=redis://…): the table exists only when the server has some.
  function renderWorkers(workers) {
    const body = document.querySelector("#workers-table tbody");
    if (!body || !workers || !workers.length) { return; }
    body.textContent = "";
    workers.forEach(function (w) {
      const job = (w.current_job || "").split(",")[0];
      const jobCell = job ? el("a", { href: "/jobs/" + job }, job.slice(0, 8)) : "";
      body.appendChild(el("tr", {}, el("td", { className: "filename" }, w.id), el("td", { className: "filename" }, w.model || ""),
        el("td", {}, w.device || ""), el("td", {}, jobCell), el("td", {}, String(w.jobs_done)), el("td", {}, time(w.last_seen)),
        el("td", {}, el("span", { className: "badge state-" + (w.alive ? "done" : "failed") }, w.alive ? "alive" : "gone"))));
    });
  }

  async function refresh() {
    try {
      const [health, jobs] = await Promise.all([api("GET", "/health"), api("GET", "/api/jobs?limit=25")]);
      document.getElementById("health-status").textContent = health.status;
      document.getElementById("health-queue").textContent = health.queue_depth;
      document.getElementById("health-running").textContent = (health.running_jobs || []).length ? `${health.running_jobs.length} running` : "idle";
      document.getElementById("health-loaded").textContent = (health.model_loaded ? "loaded" : "not loaded yet") + " · " + (health.device || "");
      renderJobs(jobs.items);
      renderWorkers(health.workers);
    } catch (e) { document.getElementById("health-status").textContent = "unreachable"; }
  }
  refresh();
  setInterval(refresh, 3000);
})();
