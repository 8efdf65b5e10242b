// The behaviour of layerlapse's report.html. Bokeh runs this once its document is ready, with the models it drives
// and the JSON payload report.py packed (its format is described there, with the window.layerlapse hook).
// User text (class names, layer names) reaches the page only as text: textContent, canvas text, or escapeHtml()
// before it goes into a Div.

function layerlapseStart(models, payloadText) {
  "use strict";
  const NOT_DRAWN = 65535;  // the 16-bit code of a point a frame does not draw
  const COORD_STEPS = 65534;
  const TWEEN_MS = 350;  // while playing, points glide from one frame to the next over this time...
  const PAUSE_MS = 250;  // ...then rest on the frame
  const HIT_PX = 4;
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
  ].join("\n");  // how far beyond a marker's edge a hover or click still finds it

  const timings = {start: performance.now()};  // milliseconds since navigation start, for the benchmark
  const data = JSON.parse(payloadText);
  timings.parsed = performance.now();
  const classNames = data.classNames;
  const lastEpoch = data.epochs[data.epochs.length - 1];
  const sets = {probe: decodePoints(data.probe), test: data.test ? decodePoints(data.test) : null};
  const layers = data.layers.map((layer) => ({
    name: layer.name, limits: layer.limits, figures: layer.figures,
    coords: {probe: decodeArray(layer.probe), test: layer.test ? decodeArray(layer.test) : null},
  }));
  const confusion = data.confusion ? decodeArray(data.confusion) : null;
  const dynamics = sets.probe.dynamics;  // null when the run has no per-image dynamics
  timings.decoded = performance.now();
  // Every map is a view of one layer: map 0 the shown layer, map 1 the layer compared with it (hidden when none).
  const views = models.plots.map((plot, k) => ({
    plot, pointSource: models.pointSources[k], testSource: models.testSources[k],
    testRenderer: models.testRenderers[k], trailSource: models.trailSources[k],
    currentSource: models.currentSources[k],
  }));
  const classPalette = models.colorMapper.palette.slice();
  const dataMapPalette = models.dataMapMapper ? models.dataMapMapper.palette.slice() : null;
  const state = {epoch: models.slider.value, drawnEpoch: null, panelsEpoch: null, layer: 0, compare: null,
                 pinned: null, playing: false, tween: null, pointer: [0, 0], hovered: null, colorBy: "class",
                 colorValues: null, selected: null, selectedMask: new Uint8Array(sets.probe.n), region: "none",
                 clearing: new Set(), dataMapByClass: false};
  const tooltip = makeTooltip();
  document.addEventListener("pointermove", (event) => { state.pointer = [event.clientX, event.clientY]; },
                            {capture: true, passive: true});

  // ---- decoding ---------------------------------------------------------------------------------------------------

  function decodeArray(packed) {
    const text = atob(packed.b64);
    const bytes = new Uint8Array(text.length);
    for (let k = 0; k < text.length; k++) bytes[k] = text.charCodeAt(k);
    const Type = {uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, float32: Float32Array}[packed.dtype];
    return new Type(bytes.buffer, 0, bytes.byteLength / Type.BYTES_PER_ELEMENT);
  }

  function decodePoints(points) {
    return {n: points.n, labels: decodeArray(points.labels), rows: points.rows ? decodeArray(points.rows) : null,
            predicted: points.predicted ? decodeArray(points.predicted) : null,
            confidence: points.confidence ? decodeArray(points.confidence) : null,
            dynamics: points.dynamics ? Object.fromEntries(Object.entries(points.dynamics).map(
              ([name, packed]) => [name, decodeArray(packed)])) : null,
            thumbnails: makeThumbnails(points.atlas)};
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

  // Between two frames while playing: each point on the straight line from its old place to its new one.
  function shownPosition(set, i, layer) {
    const to = position(set, i, state.epoch, layer);
    if (!state.tween || !to) return to;
    const from = position(set, i, state.tween.from, layer);
    if (!from) return to;
    const t = state.tween.t;
    return [from[0] + (to[0] - from[0]) * t, from[1] + (to[1] - from[1]) * t];
  }

  // ---- thumbnails: one atlas image, tiles cut out when first needed ----------------------------------------------

  function makeThumbnails(atlas) {
    if (!atlas) return null;
    const image = new Image();
    const ready = new Promise((resolve) => {
      image.onload = () => resolve(true);
      image.onerror = () => resolve(false);
    });
    image.src = atlas.uri;
    const [height, width] = atlas.tile;
    const cache = new Map();
    return {
      ready, width: width * atlas.scale, height: height * atlas.scale,
      url(i) {
        if (!image.complete || !image.naturalWidth) return null;
        if (!cache.has(i)) {
          if (cache.size > 4000) cache.clear();
          const canvas = document.createElement("canvas");
          canvas.width = this.width;
          canvas.height = this.height;
          const context = canvas.getContext("2d");
          context.imageSmoothingEnabled = false;  // crisp pixels, like the frames' samples figure
          context.drawImage(image, (i % atlas.columns) * width, Math.floor(i / atlas.columns) * height, width,
                            height, 0, 0, this.width, this.height);
          cache.set(i, canvas.toDataURL("image/png"));
        }
        return cache.get(i);
      },
    };
  }

  // A thumbnail as markup for a Div's text (a data URI made here, never user text), or "" before the atlas loads.
  function thumbnailHtml(set, i, size) {
    const thumbnails = sets[set].thumbnails;
    const url = thumbnails && thumbnails.url(i);
    return url ? `<img src="${url}" width="${size}" height="${size}" style="image-rendering:pixelated">` : "";
  }

  function thumbnailElement(set, i) {
    const thumbnails = sets[set].thumbnails;
    const url = thumbnails && thumbnails.url(i);
    if (!url) return null;
    const img = document.createElement("img");
    img.src = url;
    img.width = thumbnails.width;
    img.height = thumbnails.height;
    img.style.imageRendering = "pixelated";
    img.className = "layerlapse-thumbnail";
    return img;
  }

  // ---- what a point is --------------------------------------------------------------------------------------------

  function describe(set, i) {
    const points = sets[set];
    const row = points.rows ? points.rows[i] : i;  // its row in the run folder, also when the page subsamples
    const lines = [`${set === "probe" ? "probe" : "test"} image #${row}`, `true: ${classNames[points.labels[i]]}`];
    if (points.predicted) {
      const k = state.epoch * points.n + i;
      const confidence = (points.confidence[k] / 255).toFixed(2);
      lines.push(`epoch ${state.epoch}: predicted ${classNames[points.predicted[k]]} (${confidence})`);
    }
    return lines;
  }

  function isWrong(set, i) {
    const points = sets[set];
    return points.predicted !== null && points.predicted[state.epoch * points.n + i] !== points.labels[i];
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                                                       "'": "&#39;"})[c]);
  }

  // ---- drawing ----------------------------------------------------------------------------------------------------

  function hiddenClasses() {
    return models.classRenderers.map((renderer) => !renderer.visible);
  }

  // Each map's probe points in one data source, drawn in layers: the misclassified last when outlined and the
  // selected after all, so they lie on top; the test points, gold stars as in the PNG frames, in another, over them.
  function drawPoints() {
    const hidden = hiddenClasses();
    views.forEach((view, k) => {
      const layer = viewLayer(k);
      if (layer) drawMapPoints(view, layer, hidden);
    });
  }

  function drawMapPoints(view, layer, hidden) {
    const probe = sets.probe;
    const highlight = models.highlightWrong.active && probe.predicted !== null;
    const selecting = state.selected !== null;
    const passes = [[], [], [], []];  // by (selected, misclassified)
    for (let i = 0; i < probe.n; i++) {
      if (hidden[probe.labels[i]]) continue;
      passes[(selecting && state.selectedMask[i] ? 2 : 0) + (highlight && isWrong("probe", i) ? 1 : 0)].push(i);
    }
    const rows = passes.flat();
    const columns = {x: new Float64Array(rows.length), y: new Float64Array(rows.length),
                     value: new Float64Array(rows.length), point: new Int32Array(rows.length),
                     alpha: new Float32Array(rows.length), outline: new Float32Array(rows.length)};
    const values = colorValues();
    rows.forEach((i, row) => {
      placeRow(columns, row, "probe", i, layer);
      const wrong = highlight && isWrong("probe", i);
      columns.value[row] = values ? values[i] : probe.labels[i];
      columns.alpha[row] = pointAlpha(wrong, highlight, i);
      columns.outline[row] = wrong ? 1.0 : 0.0;
    });
    view.pointSource.data = columns;
    drawTestPoints(view, layer, hidden);
  }

  // Outlined misclassified points stand out; a selection dims every point outside it.
  function pointAlpha(wrong, highlight, i) {
    const base = data.marker.alpha;
    let alpha = !highlight ? base : wrong ? 1.0 : base * 0.2;
    if (state.selected !== null) alpha = state.selectedMask[i] ? Math.max(alpha, 0.9) : alpha * 0.12;
    return alpha;
  }

  function drawTestPoints(view, layer, hidden) {
    const rows = [];
    if (testShown(layer)) {
      for (let i = 0; i < sets.test.n; i++) if (!hidden[sets.test.labels[i]]) rows.push(i);
    }
    const columns = {x: new Float64Array(rows.length), y: new Float64Array(rows.length),
                     point: new Int32Array(rows.length)};
    rows.forEach((i, row) => placeRow(columns, row, "test", i, layer));
    view.testRenderer.visible = rows.length > 0;
    view.testSource.data = columns;
  }

  function placeRow(columns, row, set, i, layer) {
    const xy = shownPosition(set, i, layer);
    columns.x[row] = xy ? xy[0] : NaN;
    columns.y[row] = xy ? xy[1] : NaN;
    columns.point[row] = i;
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
      view.trailSource.data = {x: [], y: [], x_next: [], y_next: [], epoch: [], label: []};
      view.currentSource.data = {x: [], y: []};
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

  function drawPinned() {
    const pinned = state.pinned;
    if (pinned === null) {
      models.pinned.text = "<i>click a point to pin it here (and draw its trail); click empty space to let go</i>";
      return;
    }
    const thumbnails = sets[pinned.set].thumbnails;
    const url = thumbnails && thumbnails.url(pinned.i);
    const img = url ? `<img class="layerlapse-thumbnail" src="${url}" width="${thumbnails.width}" ` +
                      `height="${thumbnails.height}" style="image-rendering:pixelated">` : "";
    const lines = describe(pinned.set, pinned.i).map(escapeHtml).join("<br>");
    models.pinned.text = `<div class="layerlapse-pinned" style="display:flex;gap:10px;align-items:flex-start">` +
                         `${img}<div style="white-space:nowrap"><b>pinned</b><br>${lines}</div></div>`;
    if (!url && thumbnails) thumbnails.ready.then(() => { if (state.pinned === pinned) drawPinned(); });
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
      let wrong = 0;
      for (let i = 0; i < sets.probe.n; i++) if (isWrong("probe", i)) wrong++;
      lines.push(`${wrong.toLocaleString("en")} of the page's ${sets.probe.n.toLocaleString("en")} probe points ` +
                 `misclassified at this epoch (outlined)`);
    }
    models.figures.text = `<div class="layerlapse-figures" title="${escapeHtml(MEASURES_HELP)}">` +
                          `${lines.map(escapeHtml).join("<br>")}</div>`;
  }

  // The panels that follow the slider beside the map (the curves' and heatmap's markers, the confusion matrix) are
  // drawn after the map's frame is on screen, once per burst of moves: each is a canvas of its own, and repainting
  // them all with the map doubled the time a slider move took to show (bench/report_speed.py).
  let panelsPending = false;
  function schedulePanels() {
    if (panelsPending) return;
    panelsPending = true;
    requestAnimationFrame(() => setTimeout(() => {
      panelsPending = false;
      drawPanels();
    }, 0));
  }

  function drawPanels() {
    for (const span of models.spans) span.location = state.epoch;
    drawConfusion();
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
        count.push(counts[k] ? String(counts[k]) : "");
        ink.push(share[k] > 0.6 ? "white" : "black");
      }
    }
    models.confusion.data = {true: models.confusion.data.true, predicted: models.confusion.data.predicted,
                             share, count, ink};
  }

  // What a slider step changes.
  function drawFrame() {
    drawPoints();
    drawTrail();
    drawPinned();
    drawFigures();
    schedulePanels();
    state.drawnEpoch = state.epoch;
  }

  // Everything: after a toggle, a class hidden or shown, a selection or a colour choice.
  function redraw() {
    drawFrame();
    drawDataMap();
    drawSelectionList();
  }

  // ---- colour: by class, or by a per-image measure of the run's dynamics ------------------------------------------

  // Per probe point the value the colour mapper maps (NaN: none, drawn grey), or null when colouring by class.
  function colorValues() {
    if (state.colorBy === "class") return null;
    if (state.colorValues === null) {
      const measure = data.colorBy.find((option) => option.key === state.colorBy);
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
    if (key !== "class" && (!measure || !dynamics)) return;
    state.colorBy = key;
    state.colorValues = null;
    if (models.colorBy.value !== key) models.colorBy.value = key;
    if (measure) {
      models.colorMapper.setv({palette: measure.palette || data.sequentialPalette, low: measure.low,
                               high: measure.high});
      models.colorBar.setv({title: measure.title, visible: true});
    } else {
      models.colorMapper.setv({palette: classPalette, low: -0.5, high: classPalette.length - 0.5});
      models.colorBar.visible = false;
    }
    drawPoints();
  }

  // ---- the data map, and the selection it shares with the maps --------------------------------------------------

  function drawDataMap() {
    if (!models.dataMap || !dynamics) return;
    const byClass = models.dataMapColor.value === "class";
    if (byClass !== state.dataMapByClass) {  // a mapper change repaints: only when the choice changed
      models.dataMapMapper.setv(byClass ? {palette: classPalette, low: -0.5, high: classPalette.length - 0.5}
                                        : {palette: dataMapPalette, low: 0, high: 1});
      state.dataMapByClass = byClass;
    }
    const hidden = hiddenClasses();
    const selecting = state.selected !== null;
    const passes = [[], []];
    for (let i = 0; i < sets.probe.n; i++) {
      if (!hidden[sets.probe.labels[i]]) passes[selecting && state.selectedMask[i] ? 1 : 0].push(i);
    }
    const rows = passes.flat();
    const columns = {x: new Float64Array(rows.length), y: new Float64Array(rows.length),
                     value: new Float64Array(rows.length), point: new Int32Array(rows.length),
                     alpha: new Float32Array(rows.length)};
    const variabilityStep = 0.5 / 255;  // report.py's VARIABILITY_MAX / 255
    rows.forEach((i, row) => {
      columns.x[row] = dynamics.variability[i] * variabilityStep;
      columns.y[row] = dynamics.confidence[i] / 255;
      columns.value[row] = byClass ? sets.probe.labels[i] : dynamics.correctness[i] / 255;
      columns.point[row] = i;
      columns.alpha[row] = !selecting ? 0.6 : state.selectedMask[i] ? 0.95 : 0.08;
    });
    models.dataMapSource.data = columns;
  }

  // The points a box or lasso selection in one of the data sources marked (Bokeh's rows → the page's points).
  // The rows change meaning at the next draw, so the selection is kept as points and Bokeh's is cleared; that
  // clearing comes back here, later, as an empty selection to pass over.
  function selectedIn(source) {
    const rows = source.selected.indices;
    if (rows.length === 0 && state.clearing.has(source)) {
      state.clearing.delete(source);
      return;
    }
    const points = Array.from(rows, (row) => source.data.point[row]);
    if (rows.length) {
      state.clearing.add(source);
      source.selected.indices = [];
    }
    setSelection(points.length ? points : null, "none");
  }

  function selectRegion(key) {
    if (key === state.region && (key === "none" || state.selected !== null)) return;
    if (key === "none" || !dynamics || !(key in data.regions)) {
      setSelection(null, "none");
      return;
    }
    const code = data.regions[key], points = [];
    for (let i = 0; i < sets.probe.n; i++) if (dynamics.region[i] === code) points.push(i);
    setSelection(points, key);
  }

  function setSelection(points, region) {
    state.selectedMask.fill(0);
    state.selected = points === null ? null : Array.from(new Set(points.map(Number)))
      .filter((i) => Number.isInteger(i) && i >= 0 && i < sets.probe.n).sort((a, b) => a - b);
    for (const i of state.selected || []) state.selectedMask[i] = 1;
    state.region = region;
    if (models.region && models.region.value !== region) models.region.value = region;
    drawPoints();
    drawDataMap();
    drawSelectionList();
  }

  function drawSelectionList() {
    if (!models.selection) return;
    if (state.selected === null) {
      models.selection.text = "<div class='layerlapse-selection'><i>choose a region, or drag a box or lasso on the " +
                              "data map or a map: the selected images are shown here and highlighted on the maps; " +
                              "a click on one pins it</i></div>";
      return;
    }
    const shown = state.selected.slice(0, data.selectionThumbnails);
    const items = shown.map((i) => pickHtml(i, 40, `#${rowOf("probe", i)}`, "")).join("");
    const more = state.selected.length > shown.length ? ` · the first ${shown.length} shown` : "";
    const region = state.region === "none" ? "" : ` (${escapeHtml(models.region.options.find(
      ([key]) => key === state.region)[1].replace("region: ", ""))})`;
    models.selection.text = `<div class="layerlapse-selection"><b class="layerlapse-selected-count">` +
                            `${state.selected.length.toLocaleString("en")} selected</b>${region}${more}` +
                            `<div style="display:flex;flex-wrap:wrap;gap:2px;margin-top:4px">${items}</div></div>`;
    whenThumbnailsLoad(drawSelectionList);
  }

  // A clickable thumbnail (or, without images, the point's number) that pins point i; `caption` is escaped here.
  function pickHtml(i, size, title, caption) {
    const image = thumbnailHtml("probe", i, size) || `<span style="font-size:10px">#${rowOf("probe", i)}</span>`;
    const below = caption ? `<div style="font-size:10px;line-height:11px">${escapeHtml(caption)}</div>` : "";
    return `<div class="layerlapse-pick" data-point="${i}" title="${escapeHtml(title)}" ` +
           `style="cursor:pointer;text-align:center;width:${size + 4}px">${image}${below}</div>`;
  }

  function whenThumbnailsLoad(draw) {
    const thumbnails = sets.probe.thumbnails;
    if (thumbnails && !thumbnails.url(0)) thumbnails.ready.then((loaded) => { if (loaded) draw(); });
  }

  function rowOf(set, i) {
    return sets[set].rows ? sets[set].rows[i] : i;
  }

  // The hardest and most forgotten probe images, as `layerlapse dynamics` lists them.
  function drawStrips() {
    const strips = [[models.hardest, data.strips.hardest, "hardest: lowest confidence in the true class",
                     (item) => `${item.label}→${item.predicted}`],
                    [models.forgotten, data.strips.forgotten, "most forgotten: right, then wrong again",
                     (item) => `${item.label}→${item.predicted} ×${item.forgetting}`]];
    for (const [div, items, heading, caption] of strips) {
      if (!div) continue;
      const picks = (items || []).map((item) => pickHtml(item.i, 40, `#${rowOf("probe", item.i)} · true ` +
                                                         `${item.label}, finally ${item.predicted}`, caption(item)));
      div.text = `<div class="layerlapse-strip ${div.name}"><b>${heading}</b> (true→final prediction)` +
                 `<div style="display:flex;flex-wrap:wrap;gap:3px;margin-top:4px">` +
                 `${picks.join("") || "<i>none in this run</i>"}</div></div>`;
    }
    whenThumbnailsLoad(drawStrips);
  }

  // A click on a listed thumbnail pins its point. The Divs draw their text in shadow roots: composedPath sees in.
  document.addEventListener("click", (event) => {
    for (const element of event.composedPath()) {
      if (element.classList && element.classList.contains("layerlapse-pick")) {
        pin({set: "probe", i: Number(element.dataset.point)});
        return;
      }
    }
  });

  // ---- the layer measures of the shown layer --------------------------------------------------------------------

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
    models.changes.text = `<div class="layerlapse-changes">${escapeHtml(words)}<br><span style="color:#666">` +
                          `measured on ${data.measures.sampleSize.toLocaleString("en")} probe images</span></div>`;
  }

  // ---- time: the slider, and playing -------------------------------------------------------------------------------

  function setEpoch(epoch, {fromPlayer = false} = {}) {
    epoch = Math.max(0, Math.min(lastEpoch, Math.round(Number(epoch))));
    if (!fromPlayer && state.playing && epoch !== state.epoch) stopPlaying();  // the user took the slider
    if (epoch === state.epoch && state.drawnEpoch === epoch && !state.tween) return;
    state.epoch = epoch;
    state.tween = null;
    drawFrame();
    if (models.slider.value !== epoch) models.slider.value = epoch;  // its callback comes back here: drawn already
  }

  function togglePlay() {
    if (state.playing) {
      stopPlaying();
      return;
    }
    state.playing = true;
    models.play.label = "❚❚ pause";
    if (state.epoch >= lastEpoch) setEpoch(0, {fromPlayer: true});
    setTimeout(playNext, PAUSE_MS);
  }

  function stopPlaying() {
    state.playing = false;
    models.play.label = "▶ play";
    if (state.tween) setEpoch(state.epoch, {fromPlayer: true});
  }

  function playNext() {
    if (!state.playing) return;
    if (state.epoch >= lastEpoch) {
      stopPlaying();
      return;
    }
    const from = state.epoch, to = from + 1, started = performance.now();
    state.epoch = to;
    state.tween = {from, t: 0};
    const frame = (now) => {
      if (!state.playing || !state.tween) return;
      state.tween.t = Math.min(1, (now - started) / TWEEN_MS);
      if (state.tween.t < 1) {
        drawPoints();
        requestAnimationFrame(frame);
        return;
      }
      state.tween = null;
      state.drawnEpoch = null;
      setEpoch(to, {fromPlayer: true});
      setTimeout(playNext, PAUSE_MS);
    };
    requestAnimationFrame(frame);
  }

  // ---- layers -------------------------------------------------------------------------------------------------------

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
      views[1].plot.title.text = `layer ${layers[state.compare].name}`;
      fitRanges(views[1], layers[state.compare]);
    }
    else views[1].pointSource.data = {x: [], y: [], value: [], point: [], alpha: [], outline: []};
    drawFrame();
  }

  // The map's view of a layer's limits; the reset tool returns to it, not to the first layer's.
  function fitRanges(view, layer) {
    const [x0, x1, y0, y1] = layer.limits;
    view.plot.x_range.setv({start: x0, end: x1, reset_start: x0, reset_end: x1});
    view.plot.y_range.setv({start: y0, end: y1, reset_start: y0, reset_end: y1});
  }

  // ---- pointing: hover shows a tooltip, a click pins -------------------------------------------------------------

  // The shown point nearest to data position (x, y) within reach of its marker, as {set, i}, or null.
  function pointAt(x, y, view = views[0]) {
    const plot = view.plot;
    const pxPerX = plot.inner_width / Math.abs(plot.x_range.end - plot.x_range.start);
    const pxPerY = plot.inner_height / Math.abs(plot.y_range.end - plot.y_range.start);
    let best = null, bestDistance = Infinity;
    const search = (set, source, size) => {
      const {x: xs, y: ys, point} = source.data;
      for (let row = 0; row < xs.length; row++) {
        const dx = (xs[row] - x) * pxPerX, dy = (ys[row] - y) * pxPerY;
        const distance = Math.sqrt(dx * dx + dy * dy);
        if (distance <= size / 2 + HIT_PX && distance <= bestDistance) {  // <=: the later row lies on top
          best = {set, i: point[row]};
          bestDistance = distance;
        }
      }
    };
    search("probe", view.pointSource, data.marker.size);
    search("test", view.testSource, data.marker.testSize);  // drawn over the probe
    return best;
  }

  function makeTooltip() {
    const element = document.createElement("div");
    element.id = "layerlapse-tooltip";
    Object.assign(element.style, {position: "fixed", display: "none", zIndex: 1000, pointerEvents: "none",
                                  background: "white", border: "1px solid #888", borderRadius: "4px",
                                  padding: "6px", font: "12px sans-serif", boxShadow: "0 2px 6px rgba(0,0,0,.3)"});
    document.body.appendChild(element);
    return element;
  }

  function showTooltip(hit) {
    tooltip.replaceChildren();
    const img = thumbnailElement(hit.set, hit.i);
    if (img) tooltip.appendChild(img);
    else if (sets[hit.set].thumbnails) sets[hit.set].thumbnails.ready.then(() => {
      if (state.hovered && state.hovered.set === hit.set && state.hovered.i === hit.i) showTooltip(hit);
    });
    for (const line of describe(hit.set, hit.i)) {
      const div = document.createElement("div");
      div.className = "layerlapse-tooltip-line";
      div.textContent = line;  // text, never markup: class names come from the user's data
      tooltip.appendChild(div);
    }
    const [x, y] = state.pointer;
    tooltip.style.left = `${Math.min(x + 14, window.innerWidth - 200)}px`;
    tooltip.style.top = `${Math.min(y + 14, window.innerHeight - 160)}px`;
    tooltip.style.display = "block";
  }

  function hover(event, k = 0) {
    const hit = event ? pointAt(event.x, event.y, views[k]) : null;
    state.hovered = hit;
    if (hit) showTooltip(hit);
    else tooltip.style.display = "none";
  }

  function tap(event, k = 0) {
    pin(pointAt(event.x, event.y, views[k]));
  }

  function pin(hit) {
    state.pinned = hit;
    drawTrail();
    drawPinned();
  }

  // ---- the hook for tests and benchmarks (documented in report.py) -------------------------------------------------

  // A click on a map focused its event layer, which Chromium then outlined with a dotted box: the outline now shows
  // only for keyboard focus (:focus-visible), in every plot's canvas (each draws in a shadow root of its own).
  function quietFocusOutlines() {
    const index = window.Bokeh && window.Bokeh.index;
    if (!index || typeof index.query !== "function") return;
    for (const view of index.query((candidate) => candidate.canvas_view !== undefined)) {
      const root = view.canvas_view.el && view.canvas_view.el.shadowRoot;
      if (!root || root.querySelector("style.layerlapse-focus")) continue;
      const style = document.createElement("style");
      style.className = "layerlapse-focus";
      style.textContent = ".bk-events:focus:not(:focus-visible) { outline: none; }";
      root.appendChild(style);
    }
  }

  function plotView(plot = views[0].plot) {
    const index = window.Bokeh && window.Bokeh.index;
    return index && typeof index.query_one === "function" ? index.query_one((view) => view.model === plot) : null;
  }

  // Where point i is drawn on map k (0: the shown layer, 1: the compared one), in CSS pixels of the window.
  function clientPosition(i, set = "probe", k = 0) {
    const layer = viewLayer(k);
    const xy = layer && position(set, i, state.epoch, layer);
    const view = plotView(views[k].plot);
    if (!xy || !view) return null;
    const rect = view.canvas_view.el.getBoundingClientRect();
    return {x: rect.left + view.frame.x_scale.compute(xy[0]), y: rect.top + view.frame.y_scale.compute(xy[1])};
  }

  function drawnCount(source) {
    const xs = source.data.x;
    let drawn = 0;
    for (let row = 0; row < xs.length; row++) if (Number.isFinite(xs[row])) drawn++;
    return drawn;
  }

  function currentState() {
    const view = plotView();
    const compared = viewLayer(1);
    return {epoch: state.epoch, layer: layers[state.layer].name, layers: layers.map((layer) => layer.name),
            total: sets.probe.n, shown: views[0].pointSource.data.x.length, drawn: drawnCount(views[0].pointSource),
            testShown: views[0].testSource.data.x.length, testVisible: views[0].testRenderer.visible,
            trail: views[0].trailSource.data.x.length, pinned: state.pinned,
            webgl: Boolean(view && view.canvas_view.webgl), playing: state.playing,
            colorBy: state.colorBy, colorOptions: ["class", ...data.colorBy.map((option) => option.key)],
            selected: state.selected === null ? null : state.selected.slice(), region: state.region,
            compare: compared ? compared.name : null, compareDrawn: compared ? drawnCount(views[1].pointSource) : 0,
            panelsEpoch: state.panelsEpoch};
  }

  window.layerlapse = {
    ready: false, timings, state: currentState, setEpoch: (epoch) => setEpoch(epoch), setLayer, togglePlay, redraw,
    hover, tap, clientPosition, setColorBy, setCompare, selectRegion, selectedIn,
    select: (indices) => setSelection(indices === null ? null : Array.from(indices), "none"),
    pin: (i, set = "probe") => pin({set, i}), unpin: () => pin(null),
  };
  drawMeasures();
  drawStrips();
  drawDataMap();
  drawSelectionList();
  setEpoch(state.epoch);
  drawPanels();  // the first time with the map, so the page is whole when it says it is ready
  quietFocusOutlines();
  timings.drawn = performance.now();
  requestAnimationFrame(() => requestAnimationFrame(() => {
    window.layerlapse.ready = true;
    timings.ready = performance.now();
    window.layerlapseReady = true;
  }));
}
