// The little script the pages need: local times, the booking form's time zone, and the
// return page's polling of GET /api/payments/checkout-sessions/{id}.
(function () {
  "use strict";
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  function showLocalTimes() {
    var format = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
    document.querySelectorAll("time.local").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) { el.textContent = format.format(when); el.title = el.getAttribute("datetime"); }
    });
    document.querySelectorAll(".tz-name").forEach(function (el) { el.textContent = zone; });
    var field = document.getElementById("id_timezone");
    if (field && !field.value) { field.value = zone; }
  }

  var MESSAGES = {
    open: "Payment received, confirming your booking…",
    processing: "Payment received, confirming your booking…",
    booked: "Booked! Your session is paid and confirmed; a calendar invite is on its way by email.",
    pending_payment: "Booked, payment pending until your bank confirms. We will email you when it clears.",
    refunded: "That slot was taken before your payment completed, so your payment has been refunded in full.",
    payment_failed: "Your bank declined the payment, so the session was not booked.",
    expired: "This booking expired before it was paid; the slot was released."
  };
  var FINAL = ["booked", "refunded", "payment_failed", "expired"];

  function pollCheckout() {
    var box = document.querySelector("[data-testid=checkout-status]");
    if (!box || FINAL.indexOf(box.dataset.state) >= 0) { return; }
    var text = box.querySelector(".state-text"), tries = 0;
    function tick() {
      tries += 1;
      fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (body && body.state) {
            box.dataset.state = body.state;
            text.textContent = MESSAGES[body.state] || text.textContent;
            // Booked or pending: the list below now has the session.
            if (body.state === "booked" || body.state === "pending_payment") { refreshList(); }
          }
          if (FINAL.indexOf(box.dataset.state) < 0 && box.dataset.state !== "pending_payment" && tries < 120) {
            setTimeout(tick, Math.min(500 * tries, 3000));
          }
        })
        .catch(function () { if (tries < 120) { setTimeout(tick, 3000); } });
    }
    tick();
  }

  function refreshList() {
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var box = document.querySelector("[data-testid=checkout-status]");
        var main = document.querySelector("main");
        if (!fresh || !main) { return; }
        var freshBox = fresh.querySelector("[data-testid=checkout-status]");
        if (freshBox) { freshBox.remove(); }
        main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes));
        if (box) { main.prepend(box); }
        showLocalTimes();
      });
  }

  document.addEventListener("DOMContentLoaded", function () { showLocalTimes(); pollCheckout(); });
})();
