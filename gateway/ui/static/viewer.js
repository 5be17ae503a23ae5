// xdsi-gateway study viewer: one series at a time, images rendered on the server
// (DICOMweb /rendered through /ui). Mouse wheel, arrow keys, PageUp/PageDown, Home/End scroll;
// keys 0-4 choose a window preset; the counter shows the image number.
(function () {
  "use strict";
  var view = document.getElementById("view");
  var viewer = document.getElementById("viewer");
  var counter = document.getElementById("frame-counter");
  var preset = document.getElementById("preset");
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button.series"));
  if (!view || buttons.length === 0) { return; }
  var state = { base: "", uids: [], index: 0 };
  var cache = {};

  function url(i) {
    var q = "?viewport=512,512";
    if (preset.value) { q += "&window=" + encodeURIComponent(preset.value); }
    return state.base + state.uids[i] + "/rendered" + q;
  }
  function warm(i) {
    if (i < 0 || i >= state.uids.length) { return; }
    var u = url(i);
    if (!cache[u]) { var img = new Image(); img.src = u; cache[u] = img; }
  }
  function show(i) {
    if (state.uids.length === 0) { return; }
    state.index = Math.max(0, Math.min(state.uids.length - 1, i));
    view.src = url(state.index);
    view.setAttribute("data-index", String(state.index));
    counter.textContent = (state.index + 1) + " / " + state.uids.length;
    warm(state.index + 1); warm(state.index - 1); warm(state.index + 2);
  }
  function choose(button) {
    buttons.forEach(function (b) { b.setAttribute("aria-selected", b === button ? "true" : "false"); });
    state.base = button.getAttribute("data-base");
    state.uids = button.getAttribute("data-instances").split(" ").filter(Boolean);
    cache = {};
    show(Math.floor(state.uids.length / 2));
  }
  buttons.forEach(function (b) { b.addEventListener("click", function () { choose(b); viewer.focus(); }); });
  viewer.addEventListener("wheel", function (e) { e.preventDefault(); show(state.index + (e.deltaY > 0 ? 1 : -1)); }, { passive: false });
  viewer.addEventListener("keydown", function (e) {
    var step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1, PageDown: 10, PageUp: -10 }[e.key];
    if (step) { e.preventDefault(); show(state.index + step); return; }
    if (e.key === "Home") { e.preventDefault(); show(0); return; }
    if (e.key === "End") { e.preventDefault(); show(state.uids.length - 1); return; }
    if (/^[0-4]$/.test(e.key)) { preset.selectedIndex = Number(e.key); cache = {}; show(state.index); }
  });
  document.getElementById("prev").addEventListener("click", function () { show(state.index - 1); });
  document.getElementById("next").addEventListener("click", function () { show(state.index + 1); });
  preset.addEventListener("change", function () { cache = {}; show(state.index); });
  var wanted = window.location.hash.slice(1);
  var first = buttons.filter(function (b) { return b.getAttribute("data-series") === wanted; })[0];
  choose(first || buttons[0]);
}());
