// Keel dashboard: draws the charts whose data the server wrote into data-chart attributes, asks
// htmx to fetch a live element again when its event stream says "changed", and keeps opened trace
// spans open when htmx swaps in a fresher trace. No build step, no inline script.
//
// The live glue is a few lines over EventSource rather than the sse.js in the htmx webjar: that
// file is the htmx 1 extension, and under htmx 2 its hx-trigger="sse:..." path registers nothing.
(function () {
  "use strict";
  var palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];

  function drawCharts(root) {
    if (typeof Chart === "undefined") {
      return;
    }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) {
        return;
      }
      var data = JSON.parse(canvas.dataset.chart);
      data.datasets.forEach(function (d, i) {
        d.backgroundColor = palette[i % palette.length];
      });
      new Chart(canvas, {
        type: "bar",
        data: data,
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: "USD" } } },
          plugins: { legend: { position: "bottom" } }
        }
      });
      canvas.dataset.drawn = "true";
    });
  }

  // spans the reader opened stay open across live refreshes
  var opened = new Set();
  document.addEventListener("toggle", function (e) {
    var el = e.target;
    if (el.matches && el.matches("details[data-span-id]")) {
      if (el.open) {
        opened.add(el.dataset.spanId);
      } else {
        opened.delete(el.dataset.spanId);
      }
    }
  }, true);

  document.addEventListener("htmx:afterSwap", function (e) {
    e.detail.target.querySelectorAll("details[data-span-id]").forEach(function (d) {
      if (opened.has(d.dataset.spanId)) {
        d.open = true;
      }
    });
    drawCharts(e.detail.target);
  });

  function connectLive(root) {
    root.querySelectorAll("[data-live]").forEach(function (el) {
      if (el.dataset.connected) {
        return;
      }
      el.dataset.connected = "true";
      // EventSource reconnects by itself; a reconnect at worst fetches the body once more
      var source = new EventSource(el.dataset.live);
      source.addEventListener("changed", function () {
        htmx.trigger(el, "keel-changed");
      });
      window.addEventListener("pagehide", function () {
        source.close();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    connectLive(document);
  });
})();
