// The resident's report form: fill the point from the device's location, on request only.
(function () {
  "use strict";
  var btn = document.getElementById("use-location");
  var form = document.getElementById("report");
  if (!btn || !form || !navigator.geolocation) { if (btn) btn.hidden = true; return; }
  btn.addEventListener("click", function () {
    navigator.geolocation.getCurrentPosition(function (p) {
      form.lat.value = p.coords.latitude.toFixed(6);
      form.lon.value = p.coords.longitude.toFixed(6);
    });
  });
})();
