// The first draw, last of the parts: every part's constants and listeners are in place by now.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

applyScheme();
startComparison();
fitToWindow();
drawMeasures();
drawDataMap();
drawSelectionList();
setEpoch(state.epoch);
paintNow();  // the first paint now, not in an animation frame: the page is whole when it says it is ready
drawPanels();
fitFigures();
quietFocusOutlines();
applyFragment(location.hash);  // a link's view (share.js); from here on the address follows the view
timings.drawn = performance.now();
requestAnimationFrame(() => requestAnimationFrame(() => {
  window.layerlapse.ready = true;
  timings.ready = performance.now();
  window.layerlapseReady = true;
}));
// the strips' thumbnails decode their atlases (about 250 kB of PNG each): after the map is on screen
setTimeout(drawStrips, 0);
