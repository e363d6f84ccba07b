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

  async function refresh() {
    try {
      const [health, jobs] = await Promise.all([api("GET", "/health"), api("GET", "/api/jobs?limit=25")]);
      document.getElementById("health-status").textContent = health.status;
      document.getElementById("health-queue").textContent = health.queue_depth;
      document.getElementById("health-running").textContent = health.running_job ? "one running" : "idle";
      document.getElementById("health-loaded").textContent = (health.model_loaded ? "loaded" : "not loaded yet") + " · " + (health.device || "");
      renderJobs(jobs.items);
    } catch (e) { document.getElementById("health-status").textContent = "unreachable"; }
  }
  refresh();
  setInterval(refresh, 3000);
})();
