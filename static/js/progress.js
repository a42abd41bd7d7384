// Keeps the cycle page's progress rows current: a WebSocket message from the
// worker triggers a reload of the rows, and a 5-second poll covers the case
// where the socket is down (or the Channels layer is in-memory in another process).
(function () {
  "use strict";
  var rows = document.getElementById("progress-rows");
  if (!rows || !rows.dataset.refreshUrl) return;
  var indicator = document.getElementById("live-indicator");
  var loading = false;

  function refresh() {
    // Don't replace a form the manager is using.
    if (loading || rows.contains(document.activeElement)) return;
    loading = true;
    fetch(rows.dataset.refreshUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.text();
      })
      .then(function (html) {
        rows.innerHTML = html;
        if (indicator) indicator.classList.remove("stale");
      })
      .catch(function () { if (indicator) indicator.classList.add("stale"); })
      .then(function () { loading = false; });
  }

  setInterval(refresh, 5000);

  var retryDelay = 1000;
  function connect() {
    if (!window.WebSocket || !rows.dataset.wsPath) return;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + rows.dataset.wsPath);
    socket.onopen = function () { retryDelay = 1000; };
    socket.onmessage = refresh;
    socket.onclose = function (event) {
      if (event.code === 4401) return;  // not logged in: polling still runs
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    };
  }
  connect();
})();
