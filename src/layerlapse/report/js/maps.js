// The maps: each probe and test point's looks and colour on the point layers, painting in the next animation
// frame, the pinned point's trail, colouring by class or a measure, and the layer each map shows.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

function hiddenClasses() {
  return models.classRenderers.map((renderer) => !renderer.visible);
}

// The probe points' looks on map k, as the point layer draws them: alpha and outline (a ring around the marker)
// per point and the order (hidden classes left out; the misclassified on top when ringed, the selected on top of
// all), computed again only when what they depend on changed (maps that show the same looks share them; a
// comparison's maps ring each its own run's misclassified).
let sharedLooks = {key: null, looks: null};
function probeLooks(view, k) {
  const probe = sets.probe;
  const hidden = hiddenClasses();
  const highlight = models.highlightWrong.active && probe.predicted !== null;
  const selecting = state.selected !== null;
  const run = comparison && highlight ? runOfMap(k) : "";
  const key = [hidden.join(), highlight ? state.epoch : -1, state.selectionVersion, run].join("|");
  if (key === view.looksKey) return null;
  view.looksKey = key;
  if (sharedLooks.key !== key) sharedLooks = {key, looks: computeLooks(hidden, highlight, selecting, k)};
  return sharedLooks.looks;
}

function computeLooks(hidden, highlight, selecting, k) {
  const probe = sets.probe;
  const alpha = new Uint8Array(probe.n), outline = new Uint8Array(probe.n);
  const passes = [[], [], [], []];  // by (selected, misclassified)
  let anyHidden = false;
  for (let i = 0; i < probe.n; i++) {
    if (hidden[probe.labels[i]]) {
      anyHidden = true;
      continue;
    }
    const wrong = highlight && isWrong("probe", i, k);
    alpha[i] = Math.max(1, Math.round(pointAlpha(wrong, highlight, i) * 255));
    outline[i] = wrong ? 255 : 0;
    passes[(selecting && state.selectedMask[i] ? 2 : 0) + (wrong ? 1 : 0)].push(i);
  }
  const reordered = anyHidden || highlight || selecting;
  return {alpha, outline, order: reordered ? passes.flat() : null};
}

// Ringed misclassified points stand out; a selection dims every point outside it.
function pointAlpha(wrong, highlight, i) {
  const base = data.marker.alpha;
  let alpha = !highlight ? base : wrong ? 1.0 : base * 0.2;
  if (state.selected !== null) alpha = state.selectedMask[i] ? Math.max(alpha, 0.9) : alpha * 0.12;
  return alpha;
}

// The test points: every one whose class is shown, the misclassified at this epoch ringed and drawn on top, so
// that they are seen at a glance whether or not the probe's are highlighted.
function testLooks() {
  if (!sets.test) return null;
  const hidden = hiddenClasses();
  const key = [hidden.join(), state.epoch].join("|");
  if (key === state.testLooksKey) return null;
  state.testLooksKey = key;
  const alpha = new Uint8Array(sets.test.n), outline = new Uint8Array(sets.test.n), passes = [[], []];
  for (let i = 0; i < sets.test.n; i++) {
    if (hidden[sets.test.labels[i]]) continue;
    const wrong = isWrong("test", i);
    alpha[i] = 255;
    outline[i] = wrong ? 255 : 0;
    passes[wrong ? 1 : 0].push(i);
  }
  return {alpha, outline, order: passes.flat()};
}

// A layer's points on a map's point layer: the probe's and the test probe's frames, as 16-bit codes per frame.
function showLayerOn(view, layer) {
  if (view.layer === layer) return;
  view.layer = layer;
  const points = view.points;
  placeLayerSets(points, data, layer.limits, (name) => layer.coords[name], () => classColors(sets.test.labels));
  view.looksKey = state.testLooksKey = null;
  view.colored = null;
}

// Bring every map's points up to date with the state, then paint them (in the next animation frame).
function drawPoints() {
  views.forEach((view, k) => { if (viewLayer(k)) showLayerOn(view, viewLayer(k)); });
  const test = testLooks();  // null where nothing they depend on changed
  views.forEach((view, k) => {
    const layer = viewLayer(k);
    if (!layer) return;
    const looks = {probe: probeLooks(view, k), test};
    for (const name of ["probe", "test"]) {
      if (looks[name] && view.points.sets.has(name)) view.points.setLooks(name, looks[name]);
    }
    if (view.colored !== colorKey()) {
      view.points.setColors("probe", pointColors());
      view.colored = colorKey();
    }
    if (view.points.sets.has("test")) view.points.setVisible("test", testShown(layer));
  });
  requestPaint({dataMap: false});
}

// The colour of each probe point: its class, or a measure of its dynamics over the measure's palette.
function pointColors() {
  const values = colorValues();
  if (values === null) return classColors(sets.probe.labels);
  const measure = data.colorBy.find((option) => option.key === state.colorBy);
  return {values, low: measure.low, high: measure.high, palette: measure.palette || data.sequentialPalette};
}

function classColors(labels) {
  return {values: labels, low: -0.5, high: classPalette.length - 0.5, palette: classPalette};
}

// Painting waits for the next animation frame, so that a burst of changes (a slider dragged, the view panned)
// paints once; the data map, which does not change with the epoch, only when asked.
let paintPending = false, dataMapPending = false;
function requestPaint({maps = true, dataMap = true} = {}) {
  dataMapPending = dataMapPending || dataMap;
  if (paintPending || (!maps && !dataMap)) return;
  paintPending = true;
  requestAnimationFrame(() => { if (paintPending) paintNow(); });
}

function paintNow() {
  paintPending = false;
  const from = state.tween ? state.tween.from : state.epoch;
  const t = state.tween ? state.tween.t : 1;
  views.forEach((view, k) => {
    if (viewLayer(k) && mount(view)) view.points.draw(from, state.epoch, t);
  });
  if (dataMapPending && dataMapView && mount(dataMapView)) dataMapView.points.draw(0, 0, 1);
  dataMapPending = false;
  state.paintedEpoch = state.epoch;
}

// Lay a point layer's canvas under its plot's frame (again, where Bokeh made the plot's view anew), with the
// plot's current ranges; false while the plot is not on the page.
function mount(view) {
  const plotted = plotView(view.plot);
  if (!plotted || !view.plot.visible) return false;
  const host = plotted.canvas_view.underlays_el;
  if (view.points.canvas.parentNode !== host) {
    host.appendChild(view.points.canvas);
    new ResizeObserver(() => requestPaint()).observe(plotted.canvas_view.el);
  }
  const box = plotted.frame.bbox;
  view.points.place(box.left, box.top, box.width, box.height,
                    {x0: view.plot.x_range.start, x1: view.plot.x_range.end,
                     y0: view.plot.y_range.start, y1: view.plot.y_range.end});
  return true;
}

function testShown(layer = layers[state.layer]) {
  return sets.test !== null && models.showTest.active && layer.coords.test !== null;
}

function drawTrail() {
  views.forEach((view, k) => drawMapTrail(view, viewLayer(k)));
}

function drawMapTrail(view, layer) {
  const pinned = state.pinned;
  if (pinned === null || layer === null || !layer.coords[pinned.set]) {
    // emptied once: assigning data, even empty, makes Bokeh lay out and paint the whole plot again
    if (view.trailSource.data.x.length) view.trailSource.data = {x: [], y: [], x_next: [], y_next: [], epoch: [],
                                                                  label: []};
    if (view.currentSource.data.x.length) view.currentSource.data = {x: [], y: []};
    return;
  }
  const x = [], y = [], epoch = [], label = [];
  // an epoch's label only where the point has moved a little from the last labelled place (3 % of the layer's
  // extent): a point that barely moves would stack its labels into one unreadable blot
  const [x0, x1, y0, y1] = layer.limits;
  const apart = 0.03 * Math.max(x1 - x0, y1 - y0);
  let labelled = null;
  for (const e of data.epochs) {
    const xy = position(pinned.set, pinned.i, e, layer);
    x.push(xy ? xy[0] : NaN);
    y.push(xy ? xy[1] : NaN);
    epoch.push(e);
    const far = xy && (labelled === null || Math.hypot(xy[0] - labelled[0], xy[1] - labelled[1]) >= apart);
    label.push(far ? String(e) : "");
    if (far) labelled = xy;
  }
  // segment k runs from epoch k to epoch k + 1; the last row has none
  const next = (values) => [...values.slice(1), NaN];
  view.trailSource.data = {x, y, x_next: next(x), y_next: next(y), epoch, label};
  const now = position(pinned.set, pinned.i, state.epoch, layer);
  view.currentSource.data = now ? {x: [now[0]], y: [now[1]]} : {x: [], y: []};
}

// What the points' colours depend on: the colouring, and for a comparison's, the snapshot and the maps' runs.
function colorKey() {
  const measure = data.colorBy.find((option) => option.key === state.colorBy);
  return measure && measure.source === "comparison" ? `${state.colorBy}|${comparisonColorKey()}` : state.colorBy;
}

// Per probe point the value the colour mapper maps (NaN: none, drawn grey), or null when colouring by class.
function colorValues() {
  if (state.colorBy === "class") return null;
  if (state.colorValues === null || state.colorValuesKey !== colorKey()) {
    const measure = data.colorBy.find((option) => option.key === state.colorBy);
    state.colorValuesKey = colorKey();
    if (measure.source === "comparison") {
      state.colorValues = comparisonValues(measure.key);
      return state.colorValues;
    }
    const bytes = dynamics[measure.key];
    state.colorValues = new Float64Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) {
      state.colorValues[i] = bytes[i] === measure.missing ? NaN : bytes[i] * measure.scale + measure.offset;
    }
  }
  return state.colorValues;
}

function setColorBy(key) {
  const measure = data.colorBy.find((option) => option.key === key);
  if (key !== "class" && (!measure || (!dynamics && measure.source !== "comparison"))) return;
  state.colorBy = key;
  state.colorValues = null;
  if (models.colorBy.value !== key) models.colorBy.value = key;
  // the legend says what the colours mean: the classes' legend while the points have their class colours, the
  // measure's colour bar (its title, its range, the points' palette) while they are coloured by a measure; the
  // legend changes first, the bar last (a legend hidden alone was still laid out beside the map)
  if (models.classLegend) {
    if (measure) keepLegendRoom();
    models.classLegend.visible = !measure;
  }
  if (measure) {
    models.colorMapper.setv({palette: measure.palette || data.sequentialPalette, low: measure.low,
                             high: measure.high});
    models.colorBar.title = wrappedText(measure.title, 22);
    models.colorBar.visible = true;
  } else {
    models.colorMapper.setv({palette: classPalette, low: -0.5, high: classPalette.length - 0.5});
    models.colorBar.visible = false;
  }
  // laid out again now and in the next frame: a bar shown for the first time was laid out without its title
  const plotted = plotView(views[0].plot);
  if (plotted && typeof plotted.invalidate_layout === "function") {
    plotted.invalidate_layout();
    requestAnimationFrame(() => { if (!state.disposed) plotted.invalidate_layout(); });
  }
  drawPoints();
}

function setLayer(name) {
  const index = layers.findIndex((layer) => layer.name === name);
  if (index < 0 || index === state.layer) return;
  state.layer = index;
  if (models.layer.value !== name) models.layer.value = name;
  views[0].plot.title.text = `layer ${name}`;
  fitRanges(views[0], layers[index]);
  models.compare.options = [["none", "none"], ...layers.filter((layer, k) => k !== index)
    .map((layer) => [layer.name, layer.name])];
  if (state.compare === index) setCompare(null);
  drawMeasures();
  redraw();
}

// The layer a second map shows beside the first (null: none), driven by the same slider, colours and selection.
function setCompare(name) {
  const index = name === null ? -1 : layers.findIndex((layer) => layer.name === name);
  state.compare = index < 0 || index === state.layer ? null : index;
  const value = state.compare === null ? "none" : layers[state.compare].name;
  if (models.compare.value !== value) models.compare.value = value;
  views[1].plot.visible = state.compare !== null;
  if (state.compare !== null) {
    retitle(views[1].plot, `layer ${layers[state.compare].name}`);
    fitRanges(views[1], layers[state.compare]);
  }
  fitToWindow();
  drawFrame();
  fitFigures();
}

// A map's title, set again once Bokeh has drawn the plot: a plot shown a moment before (the compared map) kept
// the title it was built with until the window was resized.
function retitle(plot, text) {
  plot.title.text = text;
  requestAnimationFrame(() => {
    if (state.disposed || plot.title.text !== text) return;
    plot.title.text = "";
    plot.title.text = text;
  });
}

// The map's view of a layer's limits; the reset tool returns to it, not to the first layer's.
function fitRanges(view, layer) {
  const [x0, x1, y0, y1] = layer.limits;
  view.plot.x_range.setv({start: x0, end: x1, reset_start: x0, reset_end: x1});
  view.plot.y_range.setv({start: y0, end: y1, reset_start: y0, reset_end: y1});
}

// The room beside the map's frame that the class legend (and the toolbar) took, kept while the colour bar stands
// there in its place: the frame, and so every point, stays where it was when the colouring changes.
function keepLegendRoom() {
  const plot = views[0].plot, plotted = plotView(plot);
  if (!plotted || !models.classLegend.visible || plot.min_border_right !== null) return;
  // the right panel's own box: measured in one layout pass with the frame (a plot resized a moment before has a
  // canvas of its new width around a frame of its old one until Bokeh lays it out again)
  const panel = plotted.right_panel && plotted.right_panel.bbox;
  const room = panel ? panel.width : plotted.canvas_view.bbox.width - plotted.frame.bbox.right;
  if (room > 0) plot.min_border_right = Math.ceil(room);
}

// A text broken into lines of about `width` characters, at spaces (a colour bar's title beside the map)
function wrappedText(text, width) {
  const lines = [];
  for (const word of text.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= width) lines[last] += " " + word;
    else lines.push(word);
  }
  return lines.join("\n");
}
