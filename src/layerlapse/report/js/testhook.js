// The hook for tests and benchmarks, window.layerlapse (its contract: contract.js).
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

// Where point i is drawn on map k (0: the shown layer, 1: the compared one), in CSS pixels of the window.
function clientPosition(i, set = "probe", k = 0) {
  const layer = viewLayer(k);
  const xy = layer && position(set, i, state.epoch, layer);
  const view = plotView(views[k].plot);
  if (!xy || !view) return null;
  const rect = view.canvas_view.el.getBoundingClientRect();
  return {x: rect.left + view.frame.x_scale.compute(xy[0]), y: rect.top + view.frame.y_scale.compute(xy[1])};
}

// The points map k (0, 1, or "dataMap") draws of a set now, in drawing order: index, data position, alpha,
// outline, and the value its colour comes from (what the tests read).
function drawnPoints(k = 0, set = "probe") {
  const view = k === "dataMap" ? dataMapView : views[k];
  if (!view || (k !== "dataMap" && !viewLayer(k)) || !view.points.sets.has(set)) {
    return {point: [], x: [], y: [], alpha: [], outline: [], value: []};
  }
  const rows = view.points.drawnRows(set, k === "dataMap" ? 0 : state.epoch);
  const values = set === "test" ? sets.test.labels : k === "dataMap"  // test points: always their class
    ? (state.dataMapByClass ? sets.probe.labels : Array.from(dynamics.correctness, (v) => v / 255))
    : colorValues() || sets.probe.labels;
  rows.value = values ? rows.point.map((i) => values[i]) : rows.point.map(() => null);
  return rows;
}

function shownCount(k, set = "probe") {
  const view = views[k];
  if (!viewLayer(k) || !view.points.sets.has(set) || !view.points.sets.get(set).visible) return 0;
  const looks = view.points.sets.get(set).alpha;
  let shown = 0;
  for (let i = 0; i < looks.length; i++) if (looks[i] > 0) shown++;
  return shown;
}

function currentState() {
  const compared = viewLayer(1);
  return {epoch: state.epoch, layer: layers[state.layer].name, layers: layers.map((layer) => layer.name),
          total: sets.probe.n, shown: shownCount(0), drawn: drawnPoints(0).point.length,
          testShown: testShown() ? shownCount(0, "test") : 0, testVisible: testShown() && shownCount(0, "test") > 0,
          trail: views[0].trailSource.data.x.length, pinned: state.pinned,
          webgl: views[0].points.webgl, renderer: views[0].points.renderer, playing: state.playing,
          colorBy: state.colorBy, colorOptions: ["class", ...data.colorBy.map((option) => option.key)],
          selected: state.selected === null ? null : state.selected.slice(), region: state.region,
          selectedCell: state.selectedCell && {...state.selectedCell},
          compare: compared ? compared.name : null, compareDrawn: compared ? drawnPoints(1).point.length : 0,
          panelsEpoch: state.panelsEpoch, paintedEpoch: state.paintedEpoch, palette: state.palette,
          dark: state.dark, selectionLabel: state.selectionLabel, note: state.keepNote || null,
          hoverRings: views.map((view) => view.hoverSource.data.x.length)};
}

function comparisonState() {
  if (!comparison) return null;
  const [leftLayer, rightLayer, left, right] = shownLayers();
  const found = pairOf(left, right);
  const cka = found ? found.cka(state.epoch, leftLayer, rightLayer) : null;
  const view = plotView(models.compareTable);
  const table = view && view.el.shadowRoot ? view.el.shadowRoot.textContent : "";
  return {runs: [comparison.runs[left].name, comparison.runs[right].name], layers: [leftLayer, rightLayer], cka,
          table, curves: Object.fromEntries(Object.entries(models.compareCurves.data).map(
            ([key, values]) => [key, Array.from(values, (v) => Number.isFinite(v) ? v : null)]))};
}

window.layerlapse = {
  ready: false, timings, state: currentState, comparison: comparisonState, snapshots: () => data.epochs.length,
  setEpoch: (epoch) => setEpoch(epoch), setLayer, togglePlay, redraw,
  hover, tap, clientPosition, setColorBy, setCompare, selectRegion, selectGeometry, points: drawnPoints,
  repaint: requestPaint, mapCanvas: (k = 0) => views[k].points.canvas,
  paintedPixels: () => { paintNow(); return views[0].points.paintedPixels(); },
  select: (indices) => setSelection(indices === null ? null : Array.from(indices), "none"),
  tapConfusion, chooseCell, confusionCellPosition,
  find: (query, options) => find(query, options), setPalette, downloadSelection, copySelection, keepSelection,
  recallSelection, selectionCsv, selectionIds, viewFragment: () => viewParameters().toString(), applyFragment,
  classColors: () => classPalette.slice(),
  pin: (i, set = "probe") => pin({set, i}), unpin: () => pin(null), dispose,
};

// This page is replaced by another (the live page's next snapshot): its listeners, tooltip, timers and WebGL
// contexts go, so that nothing of it stays alive behind the new one.
function dispose() {
  if (state.playing) stopPlaying();
  state.disposed = true;
  for (const [target, type, handler, options] of listeners.splice(0)) {
    target.removeEventListener(type, handler, options);
  }
  clearTimeout(fitTimer);
  clearTimeout(panelsTimer);
  clearTimeout(noteTimer);
  clearTimeout(findTimer);
  tooltip.remove();
  for (const view of [...views, ...(dataMapView ? [dataMapView] : [])]) {
    if (view.madePoints) view.madePoints.dispose();
  }
}
