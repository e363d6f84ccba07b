// The analysis page's timeline: clicking a caption seeks the player to its chunk; the caption
// being played is highlighted.
"use strict";
(function () {
  const player = document.getElementById("player");
  const list = document.getElementById("captions");
  if (!player || !list) return;
  const buttons = Array.from(list.querySelectorAll("button.caption"));

  list.addEventListener("click", function (event) {
    const button = event.target.closest("button.caption");
    if (!button) return;
    player.currentTime = Number(button.dataset.start);
    highlight();
  });

  function highlight() {
    const t = player.currentTime;
    for (const b of buttons) {
      const on = t >= Number(b.dataset.start) && t < Number(b.dataset.end);
      b.classList.toggle("current", on);
      if (on) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
    }
  }
  player.addEventListener("timeupdate", highlight);
  player.addEventListener("seeked", highlight);

  // A search hit links to `#t=<seconds>`: start the player (and the caption list) there.
  function seekToHash() {
    const moment = /^#t=(\d+(?:\.\d+)?)$/.exec(window.location.hash);
    if (!moment) return;
    const seconds = Number(moment[1]);
    // Before the metadata has loaded, this sets where playback will start.
    player.currentTime = seconds;
    player.addEventListener("loadedmetadata", function () { player.currentTime = seconds; },
                            {once: true});
    const current = buttons.find(
      (b) => seconds >= Number(b.dataset.start) && seconds < Number(b.dataset.end));
    if (current) current.scrollIntoView({block: "nearest"});
  }
  window.addEventListener("hashchange", function () { seekToHash(); highlight(); });
  seekToHash();
  highlight();
})();
