// The grid worker's mobile screens: fill the report's point from the phone's GPS (on
// request only; nothing is fetched but our own pages), offer "handled on the spot" only
// for categories that allow it, and send a photo as soon as one is taken.
(function () {
  "use strict";
  var form = document.getElementById("report");
  var btn = document.getElementById("use-location");
  var status = document.getElementById("gps-status");
  if (btn && form) {
    if (!navigator.geolocation) {
      btn.hidden = true;
    } else {
      btn.addEventListener("click", function () {
        if (status) status.textContent = "…";
        navigator.geolocation.getCurrentPosition(function (p) {
          form.lat.value = p.coords.latitude.toFixed(6);
          form.lon.value = p.coords.longitude.toFixed(6);
          if (status) status.textContent = "±" + Math.round(p.coords.accuracy) + " m";
        }, function (e) {
          if (status) status.textContent = e.message || String(e.code);
        }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
      });
    }
  }
  var cat = document.getElementById("m-category");
  var spot = document.getElementById("on-spot-box");
  if (cat && spot) {
    var sync = function () {
      var o = cat.options[cat.selectedIndex];
      var allowed = !!(o && o.getAttribute("data-on-spot"));
      spot.hidden = !allowed;
      if (!allowed) spot.querySelector("input").checked = false;
    };
    cat.addEventListener("change", sync);
    sync();
  }
  document.querySelectorAll("input.autosubmit").forEach(function (input) {
    input.addEventListener("change", function () {
      if (input.files && input.files.length) input.form.submit();
    });
  });
})();
