// Keeps a page live: on each event from the server's event stream it
// fetches the page again and swaps in the parts marked data-live. The page
// reads the same without it. No library, no build step.
(function () {
  "use strict";
  var parts = document.querySelectorAll("[data-live]");
  if (!parts.length || !window.EventSource || !window.fetch) return;
  var pending = false, running = false;
  function refresh() {
    if (running) { pending = true; return; }
    running = true; pending = false;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        parts.forEach(function (el) {
          var next = doc.getElementById(el.id);
          if (next && next.innerHTML !== el.innerHTML) el.innerHTML = next.innerHTML;
        });
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {})
      .finally(function () {
        running = false;
        if (pending) setTimeout(refresh, 1000); // at most a refresh a second under a burst
      });
  }
  // /live is the event stream (GET /api/events/stream) under the
  // session's token.
  var after = document.querySelector('meta[name="deploydb-after"]');
  var es = new EventSource("/live?after=" + encodeURIComponent(after ? after.content : "0"));
  es.onopen = function () { document.documentElement.setAttribute("data-live-state", "open"); };
  es.onerror = function () { document.documentElement.setAttribute("data-live-state", "retrying"); };
  // Server-sent events of a named type reach only that type's listeners:
  // the page names the types (meta deploydb-events).
  var meta = document.querySelector('meta[name="deploydb-events"]');
  (meta ? meta.content.split(" ") : []).forEach(function (t) { es.addEventListener(t, refresh); });
  es.onmessage = refresh;
  // Leaving the page ends its stream at once, rather than leaving the
  // connection to time out (browsers keep few per server).
  window.addEventListener("pagehide", function () { es.close(); });
}());
