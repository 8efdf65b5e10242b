// The page's state: the decoded payload (points, layers, confusion, dynamics), the maps' views, the state object
// every part reads and changes, and what a point is (its position, its description).
// User text (class names, layer names) reaches the page only as text: textContent, canvas text, or escapeHtml()
// before it goes into a Div.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

const NOT_DRAWN = 65535;  // the 16-bit code of a point a frame does not draw
const COORD_STEPS = 65534;
const TWEEN_MS = 350;  // while playing, points glide from one frame to the next over this time...
const PAUSE_MS = 250;  // ...then rest on the frame
const HIT_PX = 4;  // how far beyond a marker's edge a hover or click still finds it
const TOOLTIP_TEXT_PX = 320;  // the hover's widest, with an item's long text in it
const TOOLTIP_TEXT_LINES = 4;  // a long text is cut to this many lines on hover (the pinned panel shows it whole)

const decodeArray = (packed) => arrays.get(packed.blob);
const classNames = data.classNames;
const lastEpoch = data.epochs[data.epochs.length - 1];
const sets = {probe: decodePoints(data.probe), test: data.test ? decodePoints(data.test) : null};
const layers = data.layers.map((layer) => ({
  name: layer.name, limits: layer.limits, figures: layer.figures,
  coords: {probe: decodeArray(layer.probe), test: layer.test ? decodeArray(layer.test) : null},
}));
const confusion = data.confusion ? decodeArray(data.confusion) : null;
const dynamics = sets.probe.dynamics;  // null when the run has no per-image dynamics
const classPalette = models.colorMapper.palette.slice();
const dataMapPalette = models.dataMapMapper ? models.dataMapMapper.palette.slice() : null;
// Every map is a view of one layer: map 0 the shown layer, map 1 the layer compared with it (hidden when none);
// its points lie on a point layer (makePointLayer) under the Bokeh plot's frame.
const views = models.plots.map((plot, k) => withPointLayer({
  plot, trailSource: models.trailSources[k], currentSource: models.currentSources[k],
  hoverSource: models.hoverSources[k],
}));
const dataMapView = models.dataMap && dynamics ? withPointLayer({plot: models.dataMap}) : null;
const state = {epoch: models.slider.value, drawnEpoch: null, panelsEpoch: null, layer: 0, compare: null,
               pinned: null, playing: false, tween: null, pointer: [0, 0], hovered: null, colorBy: "class",
               colorValues: null, selected: null, selectedMask: new Uint8Array(sets.probe.n), region: "none",
               dataMapByClass: false, testLooksKey: null, selectionVersion: 0, selectionLabel: null,
               paintedEpoch: null, palette: "tab10", dark: false};
const tooltip = makeTooltip();
// The listeners this page adds to the window and the document, so that `dispose` can take them off again (the live
// page replaces one page by the next in the same document).
const listeners = [];
function listen(target, type, handler, options) {
  target.addEventListener(type, handler, options);
  listeners.push([target, type, handler, options]);
}
listen(document, "pointermove", (event) => { state.pointer = [event.clientX, event.clientY]; },
       {capture: true, passive: true});

// A view's point layer, made when first used: a WebGL context and its shaders cost a few hundred ms in software
// WebGL, so the compared map's is made only when a layer is compared.
function withPointLayer(view) {
  let points = null;
  Object.defineProperty(view, "madePoints", {get: () => points});  // without making one
  return Object.defineProperty(view, "points", {get: () => points || (points = makePointLayer())});
}

function decodePoints(points) {
  return {n: points.n, labels: decodeArray(points.labels), rows: points.rows ? decodeArray(points.rows) : null,
          predicted: points.predicted ? decodeArray(points.predicted) : null,
          confidence: points.confidence ? decodeArray(points.confidence) : null,
          dynamics: points.dynamics ? Object.fromEntries(Object.entries(points.dynamics).map(
            ([name, packed]) => [name, decodeArray(packed)])) : null,
          extra: points.extra ? Object.fromEntries(Object.entries(points.extra).map(
            ([name, packed]) => [name, decodeArray(packed)])) : null,
          texts: points.texts ? parsedOnce(decodeArray(points.texts)) : null,
          datasetIndex: points.datasetIndex ? decodeArray(points.datasetIndex) : null,
          thumbnails: makeThumbnails(points.atlases)};
}

// Point i's text (its item's words, or a caption the run stored), or null where the run has none. Shown only as
// text: textContent, or escapeHtml() before it goes into a Div.
function textOf(set, i) {
  const texts = sets[set] && sets[set].texts;
  const list = texts && texts();
  return list && typeof list[i] === "string" ? list[i] : null;
}

// The texts' JSON (UTF-8 bytes), parsed when a text is first shown: opening the page and the slider never touch it.
function parsedOnce(bytes) {
  let parsed = null;
  return () => parsed || (parsed = JSON.parse(new TextDecoder().decode(bytes)));
}

// The layer map k shows (map 0: the chosen layer; map 1: the compared one, or null).
function viewLayer(k) {
  return k === 0 ? layers[state.layer] : state.compare === null ? null : layers[state.compare];
}

// The position of point i of a set at an epoch in a layer, or null where that frame does not draw it.
function position(set, i, epoch, layer = layers[state.layer]) {
  const codes = layer.coords[set];
  if (!codes) return null;
  const k = (epoch * sets[set].n + i) * 2;
  if (codes[k] === NOT_DRAWN) return null;
  const [x0, x1, y0, y1] = layer.limits;
  return [x0 + codes[k] / COORD_STEPS * (x1 - x0), y0 + codes[k + 1] / COORD_STEPS * (y1 - y0)];
}

function describe(set, i) {
  const points = sets[set];
  const row = points.rows ? points.rows[i] : i;  // its row in the run folder, also when the page subsamples
  const word = data.itemWord === "tokens" ? "token" : data.itemWord === "items" && !points.thumbnails ? "item" : "image";
  const where = points.datasetIndex && points.datasetIndex[i] !== row ? ` · dataset #${points.datasetIndex[i]}` : "";
  const lines = [`${set === "probe" ? "probe" : "test"} ${word} #${row}${where}`,
                 `true: ${classNames[points.labels[i]]}`];
  if (set === "probe" && comparison) {
    lines.push(...runLines(i));
  } else if (points.predicted) {
    const k = state.epoch * points.n + i;
    const confidence = (points.confidence[k] / 255).toFixed(2);
    lines.push(`${data.snapshotWord} ${state.epoch}: predicted ${classNames[points.predicted[k]]} (${confidence})`);
  }
  return lines;
}

// Whether point i is misclassified at the shown snapshot (on a comparison's map k: by the run map k shows).
function isWrong(set, i, k = 0) {
  const points = sets[set];
  if (comparison && set === "probe") return extra[`pred${runOfMap(k)}`][state.epoch * points.n + i] !== points.labels[i];
  return points.predicted !== null && points.predicted[state.epoch * points.n + i] !== points.labels[i];
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                                                     "'": "&#39;"})[c]);
}

function rowOf(set, i) {
  return sets[set].rows ? sets[set].rows[i] : i;
}
