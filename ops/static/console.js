// The ops console's only script: relative times that stay current, and the dashboard's
// refresh (it swaps the live region instead of reloading, so scrolling and focus survive).
(function () {
  "use strict";
  var UNITS = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];

  function span(seconds) {
    if (seconds < 1) return seconds < 0.5 ? "just now" : "1 s";
    for (var i = 0; i < UNITS.length; i++) {
      if (seconds >= UNITS[i][0]) return Math.floor(seconds / UNITS[i][0]) + " " + UNITS[i][1];
    }
    return Math.floor(seconds) + " s";
  }

  function relative(iso) {
    var delta = (Date.now() - Date.parse(iso)) / 1000;
    if (isNaN(delta)) return null;
    var text = span(Math.abs(delta));
    if (text === "just now") return text;
    return delta >= 0 ? text + " ago" : "in " + text;
  }

  function updateTimes(root) {
    var nodes = (root || document).querySelectorAll("time[data-rel]");
    for (var i = 0; i < nodes.length; i++) {
      var text = relative(nodes[i].getAttribute("datetime"));
      if (text) nodes[i].textContent = text;
    }
  }

  function refreshLive() {
    var live = document.getElementById("live");
    if (!live || document.hidden) return;
    fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected || !response.ok) { window.location.reload(); return null; }
        return response.text();
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (fresh) { live.innerHTML = fresh.innerHTML; updateTimes(live); }
      })
      .catch(function () { /* the next tick tries again */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    updateTimes();
    setInterval(updateTimes, 15000);
    var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
    if (every > 0) setInterval(refreshLive, every * 1000);
  });
})();
