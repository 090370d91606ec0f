// The little script the pages need: local times, the booking page's slot picker and price,
// the return page's polling of GET /api/payments/checkout-sessions/{id}, and the sessions
// list kept current while a refund is on its way.
(function () {
  "use strict";
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  function showLocalTimes(root) {
    var format = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
    (root || document).querySelectorAll("time.local").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) { el.textContent = format.format(when); el.title = el.getAttribute("datetime"); }
    });
    document.querySelectorAll(".tz-name").forEach(function (el) { el.textContent = zone; });
    var field = document.getElementById("id_timezone");
    if (field && !field.value) { field.value = zone; }
    // Registration: the account's time zone (User.time_zone) is the browser's.
    var accountZone = document.getElementById("id_time_zone");
    if (accountZone && accountZone.type === "hidden" && !accountZone.value) { accountZone.value = zone; }
    // Account page: offer the browser's zone.
    document.querySelectorAll("[data-browser-zone]").forEach(function (button) {
      button.textContent = "Use this browser's time zone (" + zone + ")";
      button.hidden = false;
      button.addEventListener("click", function () {
        var select = document.getElementById("id_time_zone");
        if (!select) { return; }
        // Some browsers report an old name (Asia/Calcutta): offer it; the server stores its current name.
        if (!Array.prototype.some.call(select.options, function (o) { return o.value === zone; })) {
          select.add(new Option(zone, zone));
        }
        select.value = zone;
      });
    });
  }

  // --- Booking: price of the chosen duration, and the slot picker -----------------------

  function bookingForm() { return document.querySelector("form.booking"); }

  function showPrice() {
    var form = bookingForm(), select = document.getElementById("id_duration_minutes");
    if (!form || !select) { return; }
    var prices = JSON.parse(form.dataset.prices || "{}");
    var amount = form.querySelector(".price-amount"), minutes = form.querySelector(".price-minutes");
    if (amount) { amount.textContent = prices[select.value] || ""; }
    if (minutes) { minutes.textContent = select.value; }
  }

  function dayLabel(isoDay) {
    // A calendar day, named as the viewer names days ("Wed, Dec 2").
    var noonUtc = new Date(isoDay + "T12:00:00Z");
    return new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric", timeZone: "UTC" }).format(noonUtc);
  }

  function timeLabel(iso) {
    return new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", timeZone: zone }).format(new Date(iso));
  }

  function slotPicker() {
    var picker = document.querySelector("[data-testid=slot-picker]");
    var select = document.getElementById("id_duration_minutes");
    if (!picker || !select) { return; }
    var daysBox = picker.querySelector(".slot-days"), timesBox = picker.querySelector(".slot-times");
    var startField = document.getElementById("id_scheduled_at"), zoneField = document.getElementById("id_timezone");
    var picked = document.querySelector("[data-testid=picked]");
    var days = [], currentDay = "", request = 0;

    function choose(iso, button) {
      // The API gives each start with the viewer's offset: its first 16 characters are the
      // wall-clock time the form expects (datetime-local, read in the form's time zone).
      startField.value = iso.slice(0, 16);
      if (zoneField) { zoneField.value = zone; }
      timesBox.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
      button.setAttribute("aria-pressed", "true");
      if (picked) { picked.textContent = "Picked: " + dayLabel(iso.slice(0, 10)) + ", " + timeLabel(iso) + "."; }
      startField.dispatchEvent(new Event("change"));
    }

    function showDay(index) {
      currentDay = days[index].day;
      daysBox.querySelectorAll("button").forEach(function (b, i) { b.setAttribute("aria-selected", i === index ? "true" : "false"); });
      timesBox.replaceChildren();
      var list = document.createElement("div");
      list.className = "slot-grid";
      days[index].starts.forEach(function (iso) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "slot";
        button.setAttribute("data-testid", "slot-time");
        button.dataset.start = iso;
        button.setAttribute("aria-pressed", startField.value === iso.slice(0, 16) ? "true" : "false");
        button.textContent = timeLabel(iso);
        button.addEventListener("click", function () { choose(iso, button); });
        list.appendChild(button);
      });
      timesBox.appendChild(list);
    }

    function render(body) {
      days = body.days || [];
      picker.dataset.loaded = String(body.duration_minutes);  // which duration the times are for
      daysBox.replaceChildren();
      timesBox.replaceChildren();
      if (!days.length) {
        var none = document.createElement("p");
        none.className = "muted";
        none.setAttribute("data-testid", "no-slots");
        none.textContent = "No free time for a " + body.duration_minutes + "-minute session in the next two weeks; try a shorter one.";
        timesBox.appendChild(none);
        return;
      }
      days.forEach(function (day, index) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "slot-day";
        button.setAttribute("role", "tab");
        button.setAttribute("data-testid", "slot-day");
        button.dataset.day = day.day;
        var name = document.createElement("span");
        name.textContent = dayLabel(day.day);
        var count = document.createElement("small");
        count.textContent = day.starts.length + (day.starts.length === 1 ? " time" : " times");
        button.append(name, count);
        button.addEventListener("click", function () { showDay(index); });
        daysBox.appendChild(button);
      });
      // Stay on the day being looked at (or the picked start's day) when the duration changes.
      var wanted = currentDay || (startField.value ? startField.value.slice(0, 10) : "");
      var keep = days.findIndex(function (d) { return d.day === wanted; });
      showDay(keep >= 0 ? keep : 0);
    }

    function load() {
      var mine = ++request;
      var url = picker.dataset.slotsUrl + "?duration_minutes=" + encodeURIComponent(select.value) +
        "&days=" + encodeURIComponent(picker.dataset.days || "14") + "&time_zone=" + encodeURIComponent(zone);
      fetch(url, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (mine !== request) { return; }  // a later duration's answer wins
          if (body) { render(body); } else { timesBox.textContent = "Free times could not be loaded; type a date and time instead."; }
        })
        .catch(function () { if (mine === request) { timesBox.textContent = "Free times could not be loaded; type a date and time instead."; } });
    }

    select.addEventListener("change", function () { delete picker.dataset.loaded; showPrice(); load(); });
    load();
  }

  // --- The return page: the Checkout's state until it is final ----------------------------

  var MESSAGES = {
    open: "Not paid yet: Stripe has not received a payment for this booking.",
    processing: "Payment received, confirming your booking…"
  };
  var FINAL = ["booked", "pending_payment", "refunded", "cancelled", "payment_failed", "expired"];

  function pollCheckout() {
    var box = document.querySelector("[data-testid=checkout-status]");
    if (!box || !box.dataset.statusUrl || FINAL.indexOf(box.dataset.state) >= 0) { return; }
    var text = box.querySelector(".state-text"), tries = 0;
    function tick() {
      tries += 1;
      fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (body && body.state && body.state !== box.dataset.state) {
            box.dataset.state = body.state;
            if (FINAL.indexOf(body.state) >= 0) { refreshPage(); return; }  // the page's own words for it
            text.textContent = MESSAGES[body.state] || text.textContent;
          }
          if (FINAL.indexOf(box.dataset.state) < 0 && tries < 120) { setTimeout(tick, Math.min(500 * tries, 3000)); }
        })
        .catch(function () { if (tries < 120) { setTimeout(tick, 3000); } });
    }
    tick();
  }

  // Fetch this page again and put its return box and session lists in place of ours.
  function refreshPage() {
    return fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["[data-testid=checkout-status]", "#session-lists"].forEach(function (selector) {
          var mine = document.querySelector(selector), theirs = fresh.querySelector(selector);
          if (mine && theirs) { mine.replaceWith(theirs); }
        });
        showLocalTimes();
      });
  }

  // --- The sessions list: while a refund is on its way, show when Stripe confirms it -----

  function followRefunds() {
    var tries = 0;
    function tick() {
      if (!document.querySelector("#session-lists [data-live]") || tries >= 90) { return; }
      tries += 1;
      setTimeout(function () { refreshPage().then(tick, tick); }, Math.min(1000 + 500 * tries, 5000));
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    showLocalTimes();
    showPrice();
    slotPicker();
    pollCheckout();
    followRefunds();
  });
})();
