// The Agent page: rules (load, validate on save, back-test), decisions, deliveries with retry.
"use strict";
(function () {
  const { el, api, time } = window.chronicon;
  const text = document.getElementById("rules-text");
  const errorBox = document.getElementById("rules-error");
  const okBox = document.getElementById("rules-ok");

  function say(box, message) { box.textContent = message || ""; box.hidden = !message; }

  async function loadRules() {
    const rules = await api("GET", "/api/rules");
    text.value = rules.yaml;
    document.getElementById("rules-source").textContent = rules.source === "built-in"
      ? "built-in rules (saving writes " + rules.path + ")" : rules.source;
  }

  document.getElementById("rules-save").addEventListener("click", async function () {
    say(errorBox, ""); say(okBox, "");
    try {
      await api("PUT", "/api/rules", { yaml: text.value });
      say(okBox, "Saved. New analyses use these rules.");
      await loadRules();
    } catch (e) { say(errorBox, e.message); }
  });

  document.getElementById("rules-backtest").addEventListener("click", async function () {
    say(errorBox, "");
    const summary = document.getElementById("backtest-summary");
    summary.textContent = "Running…";
    try {
      const report = await api("POST", "/api/rules/backtest", { yaml: text.value });
      summary.textContent = report.total
        ? report.total + " past descriptions · " + report.changed + " would be decided differently."
        : "No past analyses yet to test on.";
      const table = document.getElementById("backtest-table");
      const body = table.querySelector("tbody");
      body.textContent = "";
      report.items.forEach(function (item) {
        const changed = item.previous_label !== null && item.previous_label !== item.label;
        body.appendChild(el("tr", { className: changed ? "changed" : "" },
          el("td", { className: "filename" }, el("a", { href: "/history/" + item.analysis_id }, item.video_filename || item.analysis_id)),
          el("td", {}, item.previous_label || "—"),
          el("td", {}, el("span", { className: "label-chip label-" + item.label }, item.label), changed ? " (changed)" : ""),
          el("td", {}, item.reason)));
      });
      table.hidden = !report.items.length;
    } catch (e) { summary.textContent = ""; say(errorBox, e.message); }
  });

  async function loadDecisions() {
    const body = document.querySelector("#decisions-table tbody");
    const data = await api("GET", "/api/decisions?limit=50");
    body.textContent = "";
    if (!data.items.length) body.appendChild(el("tr", {}, el("td", { colSpan: 5, className: "muted" }, "No decisions yet.")));
    data.items.forEach(function (d) {
      const video = d.run_id ? el("a", { href: "/history/" + d.run_id }, d.video_filename || d.run_id) : (d.video_filename || "");
      body.appendChild(el("tr", {}, el("td", {}, time(d.created_at)), el("td", { className: "filename" }, video),
        el("td", {}, el("span", { className: "label-chip label-" + d.label }, d.label)), el("td", {}, d.score), el("td", {}, d.reason)));
    });
  }

  async function loadDeliveries() {
    const body = document.querySelector("#deliveries-table tbody");
    const data = await api("GET", "/api/deliveries?limit=50");
    body.textContent = "";
    if (!data.items.length) body.appendChild(el("tr", {}, el("td", { colSpan: 6, className: "muted" }, "No deliveries yet.")));
    data.items.forEach(function (d) {
      let action = "";
      if (d.status === "failed" || d.status === "retrying") {
        action = el("button", { className: "button small", type: "button" }, "Retry");
        action.addEventListener("click", async function () {
          action.disabled = true;
          try { await api("POST", "/api/deliveries/" + d.id + "/retry"); } catch (e) { window.alert(e.message); }
          loadDeliveries();
        });
      }
      body.appendChild(el("tr", {}, el("td", {}, time(d.created_at)), el("td", {}, d.channel + (d.rule ? " · " + d.rule : "")),
        el("td", {}, el("span", { className: "status-" + d.status }, d.status)), el("td", {}, d.attempts + " / " + d.max_attempts),
        el("td", {}, d.last_error || ""), el("td", {}, action)));
    });
  }

  loadRules().catch(function (e) { say(errorBox, e.message); });
  loadDecisions().catch(function () {});
  loadDeliveries().catch(function () {});
  setInterval(function () { loadDeliveries().catch(function () {}); }, 5000);
})();
