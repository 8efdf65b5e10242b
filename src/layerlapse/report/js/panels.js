// The panels beside and below the map: the pinned point, the frame's figures, the curves' markers, the confusion
// matrix, the layer measures and the hardest and most forgotten strips.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

// What the frame's figures mean, on hover over them
const MEASURES_HELP = [
  "trust (trustworthiness): how few of a point's 10 nearest neighbours on the map are strangers in the layer " +
    "(1: none)",
  "cont. (continuity): how few of its 10 nearest neighbours in the layer are missing on the map (1: none)",
  "10-NN kept: the share of its 10 nearest neighbours in the layer that are also its nearest on the map",
  "vs last frame: map kept / layer kept: the share of 10 nearest neighbours kept from the frame before, on the " +
    "map and in the layer (a faithful lapse keeps about as many as the layer)",
  "disparity: how far the map moved overall after the best rotation onto the frame before (0: not at all)",
  "motion ρ: rank correlation between how much each point's layer neighbourhood changed and how far it moved " +
    "on the map (high: points move where the layer changed)",
].join("\n");
// What the layer measures beside the map mean, on hover over their heading
const LAYER_MEASURES_HELP = [
  "k-NN accuracy: a 10-nearest-neighbour vote in the layer, fitted on half the sampled probe images and scored " +
    "on the other half (how well the layer groups the classes)",
  "linear probe: the accuracy of a logistic regression from the layer to the class, trained on half the sample " +
    "and tested on the other half (what a linear read-out can tell)",
  "1 − CKA to previous: how much the layer's representation changed since the snapshot before (0: not at all; " +
    "linear CKA, blind to rotations and scale)",
  "CKA between snapshots: the same similarity for every pair of snapshots (1: the same representation)",
].join("\n");

function drawPinned() {
  const pinned = state.pinned;
  if (pinned === null) {
    liveHtml(models.pinned, "<i>click a point to pin it here (and draw its trail); click empty space to let go</i>");
    return;
  }
  const thumbnails = sets[pinned.set].thumbnails;
  const url = thumbnails && thumbnails.url(pinned.i);
  const img = url ? `<img class="layerlapse-thumbnail" src="${url}" width="${thumbnails.width}" ` +
                    `height="${thumbnails.height}" style="image-rendering:pixelated">` : "";
  const lines = describe(pinned.set, pinned.i).map(escapeHtml).join("<br>");
  const text = textOf(pinned.set, pinned.i);  // the whole text, escaped; the panel scrolls where it is long
  const words = text === null ? "" : `<div class="layerlapse-pinned-text" style="white-space:pre-wrap;` +
                                     `overflow-wrap:anywhere;margin-top:4px;font-size:13px;line-height:16px">` +
                                     `${escapeHtml(text)}</div>`;
  liveHtml(models.pinned, `<div class="layerlapse-pinned"><div style="display:flex;gap:10px;` +
                          `align-items:flex-start">${img}<div style="white-space:nowrap"><b>pinned</b><br>${lines}` +
                          `</div></div>${words}</div>`);
  if (!url && thumbnails) thumbnails.load([pinned.i]).then(() => { if (state.pinned === pinned) drawPinned(); });
}

function drawFigures() {
  const layer = layers[state.layer];
  // The frame's words go here, in a Div of fixed size; on the map's canvas (a title, a label) any new text makes
  // Bokeh lay out and repaint the whole plot, several times the cost of moving the points.
  const lines = [data.epochFigures[state.epoch]];
  if (layer.figures[state.epoch]) lines.push(`layer ${layer.name}: ${layer.figures[state.epoch]}`);
  const compared = viewLayer(1);
  if (compared && compared.figures[state.epoch]) {
    lines.push(`compared, layer ${compared.name}: ${compared.figures[state.epoch]}`);
  }
  if (models.highlightWrong.active && sets.probe.predicted) {
    for (const k of comparison ? [...new Set([0, compared ? 1 : 0])] : [0]) {
      let wrong = 0;
      for (let i = 0; i < sets.probe.n; i++) if (isWrong("probe", i, k)) wrong++;
      const by = comparison ? ` by ${comparison.runs[runOfMap(k)].name}` : "";
      lines.push(`${wrong.toLocaleString("en")} of the page's ${sets.probe.n.toLocaleString("en")} probe points ` +
                 `misclassified${by} at this ${data.snapshotWord} (ringed in red)`);
    }
  }
  if (testShown(layer)) lines.push(testFigures());
  liveHtml(models.figures, lines.map(escapeHtml).join("<br>"), `title="${escapeHtml(MEASURES_HELP)}"`);
}

// The frame's words whole, every line of them: the panel grows to hold them when a layer is compared or chosen (a
// compared layer's measures were cut mid-line), measured in the next frame, never on a slider step (reading the
// panel's height lays the page out).
function fitFigures() {
  requestAnimationFrame(() => {
    const view = plotView(models.figures);
    const element = view && view.el;
    if (state.disposed || !element) return;
    const needed = Math.min(element.scrollHeight + 4, FIGURES_MAX_PX);
    if (needed <= element.clientHeight + 1) return;
    models.figures.height = needed;
    // Bokeh draws the Div again from its text, the first words it was given: the shown words written again
    liveHtmls.delete(models.figures);
    drawFigures();
  });
}
const FIGURES_MAX_PX = 240;

// The test points shown, of how many test images, and how many of them are misclassified at this epoch.
function testFigures() {
  const test = sets.test, n = test.n.toLocaleString("en");
  const of = data.testImages > test.n ? ` (a sample of the run's ${data.testImages.toLocaleString("en")})` : "";
  let line = `test points (diamonds): ${n} test images${of}`;
  if (test.predicted) {
    let wrong = 0;
    for (let i = 0; i < test.n; i++) if (isWrong("test", i)) wrong++;
    line += `, ${wrong.toLocaleString("en")} misclassified at this ${data.snapshotWord} (ringed in red)`;
  }
  return line;
}

// What a Div shows as the slider moves, written into an element of its own inside the Div (made once through
// the Div's text): a new text on the Div itself makes Bokeh lay out and paint the whole page again, which took
// most of a slider step (bench/report_speed.py). `html` is markup made here, user text escaped.
const liveHtmls = new Map();
function liveHtml(div, html, attributes = "") {
  const className = `${div.name}-live`;
  const view = plotView(div);
  const root = view && view.el.shadowRoot;
  const element = root && root.querySelector(`.${className}`);
  if (!element) {
    div.text = `<div class="${className}" ${attributes}>${html}</div>`;
  } else if (liveHtmls.get(div) !== html) {
    element.innerHTML = html;
  }
  liveHtmls.set(div, html);
}

// The panels that follow the slider beside the map (the curves' and heatmap's markers, the confusion matrix) are
// drawn once the slider has rested PANELS_REST_MS: each is a Bokeh plot of its own, and repainting them all took
// about 40 ms, as long again as the map's step, so a drag that repainted them at every step kept a frame rate of
// half (bench/report_speed.py).
const PANELS_REST_MS = 250;
let panelsTimer = null;
function schedulePanels() {
  clearTimeout(panelsTimer);
  panelsTimer = setTimeout(() => requestAnimationFrame(drawPanels), PANELS_REST_MS);
}

function drawPanels() {
  for (const span of models.curveSpans) span.location = data.curveX[state.epoch];  // its epoch or step
  for (const span of models.spans) span.location = state.epoch;
  drawConfusion();
  drawComparison();
  state.panelsEpoch = state.epoch;
}

function drawConfusion() {
  if (!confusion) return;
  const classes = classNames.length;
  const counts = confusion.subarray(state.epoch * classes * classes, (state.epoch + 1) * classes * classes);
  const share = new Float64Array(classes * classes), count = [], ink = [];
  for (let t = 0; t < classes; t++) {
    let rowTotal = 0;
    for (let p = 0; p < classes; p++) rowTotal += counts[t * classes + p];
    for (let p = 0; p < classes; p++) {
      const k = t * classes + p;
      share[k] = rowTotal ? counts[k] / rowTotal : 0;
      count.push(counts[k] ? shortCount(counts[k]) : "");
      // light text on the darker cells: the fuller ones on a light page, the emptier ones on a dark page (looks.js)
      ink.push((share[k] > 0.6) !== state.dark ? "white" : "black");
    }
  }
  models.confusion.data = {true: models.confusion.data.true, predicted: models.confusion.data.predicted,
                           share, count, ink};
}

// ---- asking the confusion matrix: a cell selects the probe items of its true class predicted as its class at the
// shown snapshot (selection.js highlights and lists them; the slider then keeps those items, as chosen). A click on
// the same cell at the same snapshot, or off the cells, lets go. With the plot focused (Tab reaches it: Bokeh makes
// its canvas focusable) the arrow keys move a dashed cell, Enter or Space chooses it, Escape lets go.

// the confusion cell that chose the selection ({true, predicted, epoch}; null for any other selection, or none),
// the keyboard's cell ({true, predicted}) and whether it shows
Object.assign(state, {selectedCell: null, confusionCursor: null, confusionCursorShown: false});

// The matrix's plot and its two marks (the chosen cell, the keyboard's), found by name in the page's document.
let confusionModels = null;
function confusionParts() {
  if (!confusion || !models.confusion) return null;
  if (confusionModels === null) {
    const doc = models.confusion.document;
    const find = (name) => doc ? doc.get_model_by_name(name) : null;
    confusionModels = {plot: find("layerlapse-confusion-plot"), chosen: find("layerlapse-confusion-chosen"),
                       cursor: find("layerlapse-confusion-cursor")};
  }
  return confusionModels.plot && confusionModels.chosen && confusionModels.cursor ? confusionModels : null;
}

// A Bokeh tap on the matrix, in data units (x: predicted, y: true).
function tapConfusion(event) {
  const classes = classNames.length;
  const t = Math.round(event.y), p = Math.round(event.x);
  if (!(t >= 0 && t < classes && p >= 0 && p < classes)) {  // off the cells
    if (state.selectedCell) setSelection(null, "none");
    return;
  }
  state.confusionCursor = {true: t, predicted: p};
  chooseCell(t, p);
}

// Cell (true t, predicted p) at the shown snapshot: its items selected; chosen again at the same snapshot, or a
// cell of none of the page's items, the selection goes.
function chooseCell(t, p) {
  const classes = classNames.length;
  if (!confusion || !sets.probe.predicted || !(Number.isInteger(t) && Number.isInteger(p) && t >= 0 &&
                                               t < classes && p >= 0 && p < classes)) return;
  const cell = state.selectedCell, epoch = state.epoch;
  if (cell && cell.true === t && cell.predicted === p && cell.epoch === epoch) {
    setSelection(null, "none");
    return;
  }
  const probe = sets.probe, n = probe.n, predicted = probe.predicted, points = [];
  for (let i = 0; i < n; i++) {
    if (probe.labels[i] === t && predicted[epoch * n + i] === p) points.push(i);
  }
  setSelection(points.length ? points : null, "none", points.length ? {true: t, predicted: p, epoch} : null);
}

// How many of the whole probe (not only the page's sample) a cell counts at a snapshot.
function cellCount(cell) {
  const classes = classNames.length;
  return confusion[(cell.epoch * classes + cell.true) * classes + cell.predicted];
}

// The chosen cell outlined, and the keyboard's dashed while the plot has the keyboard's focus.
function drawConfusionMarks() {
  const parts = confusionParts();
  if (!parts) return;
  const cell = state.selectedCell, cursor = state.confusionCursorShown ? state.confusionCursor : null;
  const marks = [[parts.chosen, cell], [parts.cursor, cursor]];
  for (const [source, at] of marks) {
    const x = at ? [at.predicted] : [], y = at ? [at.true] : [];
    if (source.data.x.length !== x.length || source.data.x[0] !== x[0] || source.data.y[0] !== y[0]) {
      source.data = {x, y};
    }
  }
}

// Whether an event happened in the matrix's plot (its canvas draws in a shadow root: composedPath sees in).
function inConfusion(event) {
  const parts = confusionParts();
  const view = parts && plotView(parts.plot);
  if (!view) return false;
  const canvas = view.canvas_view && view.canvas_view.events_el;
  if (canvas && !canvas.hasAttribute("aria-label")) {
    canvas.setAttribute("aria-label", "confusion matrix: arrow keys choose a cell, Enter selects its items, " +
                                      "Escape lets go");
  }
  return event.composedPath().includes(view.el);
}

const CELL_MOVES = {ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0]};
listen(document, "keydown", (event) => {
  if (!confusion || event.altKey || event.ctrlKey || event.metaKey || !inConfusion(event)) return;
  const classes = classNames.length, at = state.confusionCursor || state.selectedCell || {true: 0, predicted: 0};
  const within = (v) => Math.max(0, Math.min(classes - 1, v));
  if (event.key in CELL_MOVES) {
    const [dt, dp] = CELL_MOVES[event.key];
    state.confusionCursor = {true: within(at.true + dt), predicted: within(at.predicted + dp)};
  } else if (event.key === "Enter" || event.key === " ") {
    state.confusionCursor = {true: at.true, predicted: at.predicted};
    chooseCell(at.true, at.predicted);
  } else if (event.key === "Escape") {
    if (state.selectedCell) setSelection(null, "none");
  } else {
    return;
  }
  event.preventDefault();  // the page neither scrolls nor does anything else with these keys here
  state.confusionCursorShown = true;
  drawConfusionMarks();
});
// the dashed cell shows while the keyboard has the plot's focus (a mouse click focuses it too, without it)
listen(document, "focusin", (event) => {
  if (!confusion || !inConfusion(event)) return;
  const target = event.composedPath()[0];
  state.confusionCursorShown = Boolean(target && target.matches && target.matches(":focus-visible"));
  drawConfusionMarks();
});
listen(document, "focusout", (event) => {
  if (!confusion || !state.confusionCursorShown || !inConfusion(event)) return;
  state.confusionCursorShown = false;
  drawConfusionMarks();
});

// Where cell (true t, predicted p) is drawn, in CSS pixels of the window, or null (no matrix, or not drawn).
function confusionCellPosition(t, p) {
  const parts = confusionParts();
  const view = parts && plotView(parts.plot);
  if (!view) return null;
  const rect = view.canvas_view.el.getBoundingClientRect();
  return {x: rect.left + view.frame.x_scale.compute(p), y: rect.top + view.frame.y_scale.compute(t)};
}

// A count that fits a confusion cell: 1234, 12k, 1.2M.
function shortCount(value) {
  if (value < 10000) return String(value);
  if (value < 1e6) return `${Math.round(value / 1000)}k`;
  return `${(value / 1e6).toFixed(1)}M`;
}

// The hardest and most forgotten probe images, as `layerlapse dynamics` lists them.
// A comparison's strips (the items its runs disagree on most, …) carry their own captions and heading.
function drawStrips() {
  const strips = [["hardest", "hardest: lowest confidence in the true class (true→final prediction)",
                   (item) => `${item.label}→${item.predicted}`],
                  ["forgotten", "most forgotten: right, then wrong again (true→final prediction)",
                   (item) => `${item.label}→${item.predicted} ×${item.forgetting}`],
                  ...Object.entries(comparison ? comparison.strips : {}).map(
                    ([name, heading]) => [name, heading, (item) => item.caption])];
  for (const [name, heading, caption] of strips) {
    const div = models.strips[name], items = data.strips[name];
    if (!div) continue;
    const title = (item) => item.title || `#${rowOf("probe", item.i)} · true ${item.label}, finally ${item.predicted}`;
    // a run with texts lists each item's text (and thumbnail, where it has images); else the thumbnails
    const texts = sets.probe.texts !== null;
    const picks = (items || []).map((item) => texts ? textPickHtml(item.i, title(item), caption(item))
                                                    : pickHtml(item.i, 40, title(item), caption(item)));
    div.text = `<div class="layerlapse-strip ${div.name}"><b>${escapeHtml(heading)}</b>` +
               `<div style="display:flex;flex-wrap:wrap;gap:3px;margin-top:4px` +
               `${texts ? ";flex-direction:column" : ""}">` +
               `${picks.join("") || "<i>none in this run</i>"}</div></div>`;
  }
  whenThumbnailsLoad(Object.values(data.strips).flat().map((item) => item.i), drawStrips);
}

function drawMeasures() {
  if (!models.ckaCells) return;
  const measured = data.measures.layers[layers[state.layer].name];
  const frames = data.epochs.length;
  const values = (list) => Float64Array.from(list || new Array(frames).fill(null), (v) => v === null ? NaN : v);
  const cka = new Float64Array(frames * frames).fill(NaN);
  if (measured) {
    measured.cka.forEach((row, a) => row.forEach((v, b) => { cka[a * frames + b] = v === null ? NaN : v; }));
  }
  models.ckaCells.data = {a: models.ckaCells.data.a, b: models.ckaCells.data.b, cka};
  models.measuresSource.data = {epoch: data.epochs, knn: values(measured && measured.knn),
                                linear: values(measured && measured.linear),
                                change: values(measured && measured.change)};
  const words = measured ? measured.largest : `${layers[state.layer].name}: no layer measures stored`;
  models.changes.text = `<div class="layerlapse-changes" title="${escapeHtml(LAYER_MEASURES_HELP)}">` +
                        `${escapeHtml(words)}<br><span style="opacity:0.7">` +
                        `measured on ${data.measures.sampleSize.toLocaleString("en")} probe ${data.itemWord}</span></div>`;
}
