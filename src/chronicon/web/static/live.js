// The live view of one job: Server-Sent Events drive the stage list, the thumbnails, the text
// as it is generated, and the agent's decision. Model text only ever goes into textContent.
"use strict";
(function () {
  const { el, api } = window.chronicon;
  const root = document.getElementById("live");
  const jobId = root.dataset.jobId;
  const STAGES = [
    ["upload", "Upload"], ["queued", "Queue"], ["probe", "Probe video"],
    ["sampling", "Sample frames"], ["model_load", "Load model"], ["preprocess", "Preprocess"],
    ["generate", "Generate description"], ["agent", "Agent decision"],
  ];
  const stagesList = document.getElementById("stages");
  const framesBox = document.getElementById("frames");
  const description = document.getElementById("description");
  const stateBadge = document.getElementById("job-state");
  const position = document.getElementById("position");
  const cancel = document.getElementById("cancel");
  const rows = {};
  const tiles = {};

  function buildStages() {
    stagesList.textContent = "";
    STAGES.forEach(function (pair) {
      const seconds = el("span", { className: "seconds" });
      const detail = el("span", { className: "stage-detail" });
      const li = el("li", { className: "stage" }, el("span", { className: "dot" }), el("span", {}, pair[1]), seconds, detail);
      li.dataset.stage = pair[0];
      rows[pair[0]] = { li: li, seconds: seconds, detail: detail };
      stagesList.appendChild(li);
    });
  }

  function setStage(stage, status, seconds, detail) {
    const row = rows[stage];
    if (!row) return;
    if (status === "active" && row.li.classList.contains("done")) return;
    row.li.classList.remove("active", "done", "failed");
    row.li.classList.add(status);
    if (seconds !== undefined && seconds !== null) row.seconds.textContent = Number(seconds).toFixed(2) + " s";
    if (detail) row.detail.textContent = detail;
    if (status !== "failed") {
      // Reaching a stage means every stage before it is behind us.
      const index = STAGES.findIndex(function (p) { return p[0] === stage; });
      STAGES.slice(0, index).forEach(function (p) {
        const earlier = rows[p[0]].li;
        if (earlier.classList.contains("active")) { earlier.classList.remove("active"); earlier.classList.add("done"); }
      });
    }
  }

  function setState(state) {
    stateBadge.textContent = state;
    stateBadge.className = "badge state-" + state;
    cancel.hidden = state !== "queued";
  }

  function tile(key) {
    if (tiles[key]) return tiles[key];
    const empty = framesBox.querySelector(".empty");
    if (empty) empty.remove();
    const img = el("img", { alt: "sampled frame" });
    const caption = el("figcaption", {});
    const figure = el("figure", { className: "frame pending" }, img, caption);
    tiles[key] = { figure: figure, img: img, caption: caption };
    framesBox.appendChild(figure);
    return tiles[key];
  }

  function caption(t, data) {
    if (data.timestamp !== undefined && data.timestamp !== null) t.caption.textContent = Number(data.timestamp).toFixed(2) + " s";
  }

  function reset() {
    buildStages();
    Object.keys(tiles).forEach(function (k) { delete tiles[k]; });
    framesBox.textContent = "";
    description.textContent = "";
    setStage("upload", "done");
  }

  const handlers = {
    stage_started: function (d) { setState("running"); setStage(d.stage, "active", null, d.detail); if (d.stage === "generate") description.classList.add("streaming"); },
    stage_finished: function (d) { setStage(d.stage, "done", d.seconds, d.detail); if (d.stage === "generate") description.classList.remove("streaming"); },
    queued: function (d) { setState("queued"); setStage("queued", "active"); showPosition(d.position); },
    position: function (d) { showPosition(d.position); },
    interrupted: function (d) { reset(); position.textContent = d.detail || "interrupted; requeued"; },
    frame: function (d) { const t = tile("i" + d.index); caption(t, d); },
    thumbnail: function (d) {
      const t = tile("i" + d.index);
      t.img.src = d.url;
      t.img.alt = "frame at " + Number(d.timestamp || 0).toFixed(2) + " s";
      t.figure.classList.remove("pending");
      caption(t, d);
    },
    token: function (d) { setStage("generate", "active"); description.classList.add("streaming"); description.appendChild(document.createTextNode(d.text)); },
    chunk: function (d) {
      // A timeline: chunk k of n, with the estimated time left once one chunk is timed.
      setState("running");
      const eta = d.eta_s === null || d.eta_s === undefined ? "" : ", about " + Math.round(d.eta_s) + " s left";
      position.textContent = d.done ? "All " + d.total + " chunks described; writing the summary."
        : "Chunk " + d.chunk + " of " + d.total + eta + ".";
    },
    decision: showDecision,
    done: function (d) { finish("done"); showDone(d.summary || {}); },
    failed: function (d) {
      finish("failed");
      Object.values(rows).forEach(function (r) { if (r.li.classList.contains("active")) { r.li.classList.remove("active"); r.li.classList.add("failed"); } });
      const box = document.getElementById("job-error");
      box.textContent = d.error || "the analysis failed";
      box.hidden = false;
    },
    cancelled: function () { finish("cancelled"); position.textContent = "Cancelled."; },
  };

  function showPosition(p) {
    position.textContent = p ? (p === 1 ? "Next in line." : "Position " + p + " in the queue.") : "";
  }

  function showDecision(d) {
    const box = document.getElementById("decision");
    box.hidden = false;
    const label = document.getElementById("decision-label");
    if (d.error) { label.textContent = "agent error"; document.getElementById("decision-reason").textContent = d.error; return; }
    const decision = d.decision || {};
    label.textContent = decision.label || "none";
    label.className = "label-chip label-" + (decision.label || "none");
    document.getElementById("decision-score").textContent = decision.score !== undefined ? "score " + decision.score : "";
    document.getElementById("decision-reason").textContent = decision.reason || "";
    const parts = ["action: " + (d.action || "none")];
    if (d.email_status) parts.push("email: " + d.email_status);
    if (d.webhook_status) parts.push("webhook: " + d.webhook_status);
    document.getElementById("decision-action").textContent = parts.join(" · ");
    if (d.decision_id) followDeliveries(d.decision_id, d.deliveries || [], 0);
  }

  // Deliveries are sent by the outbox after the decision: follow them until none is pending.
  const PENDING = ["queued", "sending", "retrying"];
  function followDeliveries(decisionId, items, round) {
    const list = document.getElementById("deliveries");
    list.textContent = "";
    items.forEach(function (item) {
      const note = item.last_error || item.error || item.note || "";
      list.appendChild(el("li", {}, item.channel + " · ",
        el("span", { className: "status-" + item.status }, item.status), note ? " · " + note : ""));
    });
    const pending = items.some(function (item) { return PENDING.indexOf(item.status) >= 0; });
    if (!pending || round > 60) return;
    setTimeout(function () {
      api("GET", "/api/deliveries?decision_id=" + decisionId)
        .then(function (data) { followDeliveries(decisionId, data.items, round + 1); })
        .catch(function () {});
    }, 2000);
  }

  function showDone(summary) {
    position.textContent = "";
    if (!summary.analysis_id) return;
    document.getElementById("analysis-link").href = "/history/" + summary.analysis_id;
    document.getElementById("json-link").href = "/api/analyses/" + summary.analysis_id + "/result.json";
    document.getElementById("done-links").hidden = false;
  }

  let source = null;
  function finish(state) {
    setState(state);
    description.classList.remove("streaming");
    if (state === "done") Object.values(rows).forEach(function (r) { if (r.li.classList.contains("active")) { r.li.classList.remove("active"); r.li.classList.add("done"); } });
    if (source) source.close();  // otherwise EventSource reconnects to a finished stream
  }

  cancel.addEventListener("click", function () {
    api("DELETE", "/api/jobs/" + jobId).catch(function (e) { position.textContent = e.message; });
  });

  reset();
  source = new EventSource(root.dataset.eventsUrl);
  Object.keys(handlers).forEach(function (kind) {
    source.addEventListener(kind, function (e) { handlers[kind](JSON.parse(e.data)); });
  });
})();
