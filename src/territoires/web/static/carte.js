// Draws the place, its QPV and the proximity band from the GeoJSON embedded in the page.
// The page works without this script: the verdict and the motif are rendered by the server.
(function () {
  "use strict";
  var holder = document.getElementById("carte");
  var source = document.getElementById("carte-donnees");
  if (!holder || !source || typeof L === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var map = L.map(holder, { scrollWheelZoom: false });
  L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
    maxZoom: 19,
    attribution: "&copy; contributeurs OpenStreetMap"
  }).addTo(map);
  var layers = L.featureGroup().addTo(map);
  L.geoJSON(data.bande, {
    interactive: false,
    style: { color: "#6a3d9a", weight: 1, dashArray: "4 4", fillColor: "#cab2d6", fillOpacity: 0.35 }
  }).addTo(layers);
  L.geoJSON(data.qpv, {
    style: { color: "#6a3d9a", weight: 2, fillColor: "#6a3d9a", fillOpacity: 0.35 },
    onEachFeature: function (feature, layer) {
      layer.bindTooltip("QPV " + feature.properties.code + " « " + feature.properties.nom + " »");
    }
  }).addTo(layers);
  var lonlat = data.lieu.coordinates;
  var place = L.circleMarker([lonlat[1], lonlat[0]], {
    radius: 9, color: "#1b1b1b", weight: 2, fillColor: "#ffbf47", fillOpacity: 1
  }).bindTooltip("Le lieu").addTo(layers);
  var bounds = layers.getBounds();
  if (data.qpv.features.length) {
    map.fitBounds(bounds.pad(0.1), { maxZoom: 16 });
  } else {
    map.setView([lonlat[1], lonlat[0]], 14);
  }
  place.getElement().setAttribute("data-lieu", "");
  window.territoiresCarte = { map: map, lieu: place };
})();
