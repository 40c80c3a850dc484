// civicgrid maps: draws area boundaries (GeoJSON from the API) with Leaflet.
// No tiles unless the server is configured with a tile URL (e.g. a 天地图 server), so
// nothing is fetched from outside. Coordinates are WGS-84 throughout.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) return;

  var focus = el.getAttribute("data-focus") || window.location.hash.replace("#", "");
  // Pick mode: a click on the map fills the lat/lon fields of this form (intake, placing).
  var pick = document.getElementById(el.getAttribute("data-pick") || "");
  var palette = ["#0b5cad", "#1e8e3e", "#b76e00", "#8e44ad", "#c0392b", "#16a085",
                 "#d35400", "#2c3e50", "#7f8c8d", "#6d4c41", "#2980b9", "#e67e22"];
  // Streets take the palette's colours in code order, so neighbours rarely share one.
  var streetIndex = {};
  function streetColour(code) {
    var street = code.slice(0, 9);
    if (!(street in streetIndex)) {
      var n = parseInt(street.slice(6), 10) || 0;
      streetIndex[street] = n % palette.length;
    }
    return palette[streetIndex[street]];
  }
  function style(f) {
    var p = f.properties, c = streetColour(p.code);
    if (p.code === focus && (p.level === "grid" || p.level === "dedicated")) {
      return { color: "#c0392b", weight: 3, fillColor: "#c0392b", fillOpacity: 0.3 };
    }
    switch (p.level) {
      case "district": return { color: "#1f2933", weight: 3, fill: false };
      case "street": return { color: c, weight: 3, fill: false, interactive: false };
      case "community": return { color: c, weight: 2, fill: false, interactive: false, opacity: 0.9 };
      case "dedicated": return { color: "#c0392b", weight: 2, dashArray: "4 3", fillColor: "#c0392b", fillOpacity: 0.25 };
      default: return { color: c, weight: 1, fillColor: c, fillOpacity: 0.18 };
    }
  }

  var map = L.map(el, { preferCanvas: true, zoomSnap: 0.25, attributionControl: true });
  map.attributionControl.setPrefix("Leaflet");
  var tiles = el.getAttribute("data-tiles");
  if (tiles) {
    L.tileLayer(tiles, { attribution: el.getAttribute("data-attribution") || "", maxZoom: 19 }).addTo(map);
  }
  map.setView([0, 0], 2);

  var layers = {};
  var bounds = null;
  var urls = (el.getAttribute("data-geo") || "").split(" ").filter(Boolean);

  function addLayer(fc) {
    if (fc.type === "Feature") fc = { type: "FeatureCollection", features: [fc] };
    var layer = L.geoJSON(fc, {
      style: style,
      onEachFeature: function (f, l) {
        var p = f.properties;
        l.bindTooltip(p.name + " · " + p.code, { sticky: true });
        if (!pick && p.level !== "street" && p.code !== focus) {
          l.on("click", function () { window.location.href = "/areas/" + p.code; });
        }
        if (p.code === focus && l.getBounds) bounds = l.getBounds();
      }
    });
    var level = fc.features.length ? fc.features[0].properties.level : "other";
    layers[level] = layers[level] || L.layerGroup().addTo(map);
    layers[level].addLayer(layer);
    var b = layer.getBounds();
    if (b.isValid() && !bounds) bounds = b;
    else if (b.isValid() && !focus) bounds.extend(b);
  }

  Promise.all(urls.map(function (u) {
    return fetch(u, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; });
  })).then(function (all) {
    all.forEach(function (fc) { if (fc) addLayer(fc); });
    ["community", "street", "dedicated"].forEach(function (k) {
      if (layers[k]) layers[k].eachLayer(function (l) { if (l.bringToFront) l.bringToFront(); });
    });
    // A grid is shown with its neighbours around it.
    if (bounds && bounds.isValid()) map.fitBounds(focus.length === 15 ? bounds.pad(1.2) : bounds, { padding: [12, 12] });
    var plat = parseFloat(el.getAttribute("data-lat")), plon = parseFloat(el.getAttribute("data-lon"));
    if (!isNaN(plat) && !isNaN(plon)) L.marker([plat, plon]).addTo(map);
    el.setAttribute("data-ready", "true");
  });

  if (pick) {
    var picked = null;
    var put = function (lat, lon) {
      if (picked) map.removeLayer(picked);
      picked = L.marker([lat, lon]).addTo(map);
    };
    map.on("click", function (e) {
      pick.lat.value = e.latlng.lat.toFixed(6);
      pick.lon.value = e.latlng.lng.toFixed(6);
      put(e.latlng.lat, e.latlng.lng);
    });
    var typed = function () {
      var lat = parseFloat(pick.lat.value), lon = parseFloat(pick.lon.value);
      if (!isNaN(lat) && !isNaN(lon)) { put(lat, lon); map.panTo([lat, lon]); }
    };
    pick.lat.addEventListener("change", typed);
    pick.lon.addEventListener("change", typed);
    el.classList.add("picking");
  }

  // Layer switches on the map page.
  document.querySelectorAll("input[data-layer]").forEach(function (box) {
    box.addEventListener("change", function () {
      var l = layers[box.getAttribute("data-layer")];
      if (!l) return;
      if (box.checked) l.addTo(map); else map.removeLayer(l);
    });
  });

  // Locate: a click on the map fills the form; a result puts a marker on the point.
  var form = document.getElementById("locate");
  var marker = null;
  if (form) {
    map.on("contextmenu", function (e) {
      form.lat.value = e.latlng.lat.toFixed(6);
      form.lon.value = e.latlng.lng.toFixed(6);
      if (window.htmx) window.htmx.trigger(form, "submit");
    });
    document.body.addEventListener("htmx:afterSwap", function (ev) {
      var r = ev.detail.target.querySelector(".located");
      if (!r) return;
      var ll = [parseFloat(r.getAttribute("data-lat")), parseFloat(r.getAttribute("data-lon"))];
      if (marker) map.removeLayer(marker);
      marker = L.marker(ll).addTo(map);
      map.panTo(ll);
    });
  }
})();
