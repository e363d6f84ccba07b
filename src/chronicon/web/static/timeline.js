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
  highlight();
})();
