// Keeps a page live: on each event from the server's event stream it
// fetches the page again and swaps in the parts marked data-live. The page
// reads the same without it. No library, no build step.
(function () {
  "use strict";
  var parts = document.querySelectorAll("[data-live]");
  if (!parts.length || !window.EventSource || !window.fetch || !window.DOMParser) return;
  var minGap = 1000; // ms between two fetches, however many events come
  var last = 0, timer = null, running = false, pending = false;

  // busy says whether el holds what the reader is doing: the focus, or
  // a field with something typed in it. It is left alone until they are
  // done, and swapped in later.
  function busy(el) {
    var a = document.activeElement;
    if (a && a !== document.body && el.contains(a)) return true;
    var fields = el.querySelectorAll("input, textarea, select");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].type !== "hidden" && fields[i].value) return true;
    }
    return false;
  }

  function schedule() {
    if (running) { pending = true; return; }
    if (timer) return;
    timer = setTimeout(refresh, Math.max(0, last + minGap - Date.now()));
  }

  function refresh() {
    timer = null; running = true; pending = false; last = Date.now();
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        parts.forEach(function (el) {
          var next = doc.getElementById(el.id);
          if (!next || next.innerHTML === el.innerHTML) return;
          if (busy(el)) { pending = true; return; }
          el.innerHTML = next.innerHTML;
        });
        document.documentElement.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {})
      .finally(function () {
        running = false;
        if (pending) schedule();
      });
  }

  // /live is the event stream (GET /api/events/stream) under the
  // session's token, from the latest event when the page was read,
  // narrowed to what the page shows (deploydb-stream).
  var after = document.querySelector('meta[name="deploydb-after"]');
  var only = document.querySelector('meta[name="deploydb-stream"]');
  var es = new EventSource("/live?after=" + encodeURIComponent(after ? after.content : "0") + (only ? "&" + only.content : ""));
  es.onopen = function () { document.documentElement.setAttribute("data-live-state", "open"); };
  es.onerror = function () { document.documentElement.setAttribute("data-live-state", "retrying"); };
  // Server-sent events of a named type reach only that type's listeners:
  // the page names the types (meta deploydb-events).
  var meta = document.querySelector('meta[name="deploydb-events"]');
  (meta ? meta.content.split(" ") : []).forEach(function (t) { es.addEventListener(t, schedule); });
  es.onmessage = schedule;
  // Leaving the page ends its stream at once, rather than leaving the
  // connection to time out (browsers keep few per server); a page the
  // browser brings back from its cache (Back) is read again.
  window.addEventListener("pagehide", function () { es.close(); document.documentElement.setAttribute("data-live-state", "closed"); });
  window.addEventListener("pageshow", function (e) { if (e.persisted) location.reload(); });
}());
