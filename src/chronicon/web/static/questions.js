// The analysis page's question thread: ask, then follow the `ask` job's events; the answer
// grows as its pieces arrive. Text is only ever set as text, never parsed as HTML.
"use strict";
(function () {
  const form = document.getElementById("ask-form");
  if (!form) return;
  const input = document.getElementById("ask-question");
  const button = document.getElementById("ask-submit");
  const thread = document.getElementById("thread");
  const error = document.getElementById("ask-error");
  const el = window.chronicon.el;

  function follow(url, item, answer) {
    const source = new EventSource(url);
    function end(state, text) {
      source.close();  // otherwise EventSource reconnects to a finished stream
      item.dataset.state = state;
      answer.classList.remove("muted");
      if (text !== undefined) answer.textContent = text;
      if (state === "failed") answer.classList.add("error-text");
      button.disabled = false;
    }
    let started = false;
    source.addEventListener("token", function (e) {
      if (!started) { answer.textContent = ""; answer.classList.remove("muted"); started = true; }
      answer.appendChild(document.createTextNode(JSON.parse(e.data).text));
    });
    source.addEventListener("done", function () { end("answered", started ? undefined : ""); });
    source.addEventListener("failed", function (e) { end("failed", JSON.parse(e.data).error); });
    source.addEventListener("cancelled", function () { end("failed", "cancelled"); });
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    error.hidden = true;
    button.disabled = true;
    let accepted;
    try {
      accepted = await window.chronicon.api("POST", form.dataset.url, { question: question });
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      button.disabled = false;
      return;
    }
    const answer = el("p", { className: "answer muted" }, "waiting for the model…");
    const item = el("li", { className: "question-item", id: "question-" + accepted.question_id },
                    el("p", { className: "question" }, question), answer);
    item.dataset.state = "asked";
    thread.appendChild(item);
    input.value = "";
    follow(accepted.events_url, item, answer);
  });
})();
