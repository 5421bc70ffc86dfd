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

  // what the reader typed into an approval's form survives the live refresh of the inbox: the
  // values, which argument editors are open, and where the cursor was
  var typed = new Map();
  var focused = null;
  function fieldKey(el) {
    var card = el.closest && el.closest("[data-approval-id]");
    return card && el.name ? card.dataset.approvalId + "/" + el.name : null;
  }
  document.addEventListener("input", function (e) {
    var key = fieldKey(e.target);
    if (key) {
      typed.set(key, e.target.value);
    }
  }, true);
  document.addEventListener("toggle", function (e) {
    var el = e.target;
    var card = el.matches && el.matches("details.edit-args") && el.closest("[data-approval-id]");
    if (card) {
      typed.set(card.dataset.approvalId + "/#edit-open", el.open);
    }
  }, true);

  // a refused decision comes back as the approval's card with the server's reason: show it
  document.addEventListener("htmx:beforeSwap", function (e) {
    var elt = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (e.detail.xhr.status >= 400 && elt && elt.closest && elt.closest("[data-swap-errors]")) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
    var active = document.activeElement;
    var key = active ? fieldKey(active) : null;
    focused = key ? { key: key, start: active.selectionStart, end: active.selectionEnd } : null;
  });

  document.addEventListener("htmx:afterSwap", function (e) {
    var root = e.detail.target.isConnected ? e.detail.target : document;
    root.querySelectorAll("details[data-span-id]").forEach(function (d) {
      if (opened.has(d.dataset.spanId)) {
        d.open = true;
      }
    });
    document.querySelectorAll("[data-approval-id]").forEach(function (card) {
      var id = card.dataset.approvalId;
      card.querySelectorAll("textarea[name], input[name]:not([type=hidden])").forEach(function (f) {
        var key = id + "/" + f.name;
        if (typed.has(key) && f.value !== typed.get(key)) {
          f.value = typed.get(key);
        }
        if (focused && focused.key === key && document.activeElement !== f) {
          f.focus();
          try {
            f.setSelectionRange(focused.start, focused.end);
          } catch (ignored) {
            // not a text field
          }
        }
      });
      var edit = card.querySelector("details.edit-args");
      if (edit && typed.get(id + "/#edit-open")) {
        edit.open = true;
      }
    });
    drawCharts(root);
  });

  function connectLive(root) {
    root.querySelectorAll("[data-live]").forEach(function (el) {
      if (el.dataset.connected) {
        return;
      }
      el.dataset.connected = "true";
      // EventSource reconnects by itself; a reconnect at worst fetches the body once more
      var source = new EventSource(el.dataset.live);
      (el.dataset.liveEvents || "changed").split(" ").forEach(function (name) {
        source.addEventListener(name, function () {
          htmx.trigger(el, "keel-changed");
        });
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
