// The behaviour of layerlapse's report.html. Bokeh runs this once its document is ready, with the models it drives
// and the JSON payload report.py packed (its format is described there, with the window.layerlapse hook).
// User text (class names, layer names) reaches the page only as text: textContent, canvas text, or escapeHtml()
// before it goes into a Div.

function layerlapseStart(models, payloadText) {
  "use strict";
  const timings = {start: performance.now()};  // milliseconds since navigation start, for the benchmark
  const data = JSON.parse(payloadText);
  timings.parsed = performance.now();
  readBlobs(data).then((arrays) => {
    timings.decoded = performance.now();
    layerlapseShow(models, data, arrays, timings);
  }).catch((error) => {
    document.body.insertAdjacentText("afterbegin", `layerlapse: this report could not be read: ${error}`);
    throw error;
  });
}

// Every packed array of the payload ({blob, dtype, shape, encoding}), read from its <script> tag: base64, then, for
// "gzip", unpacked by the browser's own DecompressionStream. Returns a Map from blob number to typed array.
async function readBlobs(data) {
  const refs = [];
  (function find(value) {
    if (value && typeof value === "object") {
      if (typeof value.blob === "number" && value.dtype) refs.push(value);
      else for (const item of Object.values(value)) find(item);
    }
  })(data);
  const arrays = new Map();
  await Promise.all(refs.map(async (ref) => {
    const text = document.getElementById(`layerlapse-blob-${ref.blob}`).textContent;
    let bytes = base64Bytes(text);
    if (ref.encoding === "gzip") {
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    }
    if (ref.delta) bytes = undoDeltas(bytes, ref);
    const Type = {uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, float32: Float32Array}[ref.dtype];
    arrays.set(ref.blob, new Type(bytes.buffer, bytes.byteOffset, bytes.byteLength / Type.BYTES_PER_ELEMENT));
  }));
  return arrays;
}

// base64 to bytes: the browser's own decoder where it has one (Chromium 140, Firefox 133, Safari 18.2), else atob.
function base64Bytes(text) {
  text = text.trim();
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let k = 0; k < binary.length; k++) bytes[k] = binary.charCodeAt(k);
  return bytes;
}

// Frames of 16-bit codes stored as each frame's difference from the one before (mod 65536), the low bytes of a
// frame before its high bytes (report.py's `delta_planes`): points that hold still give runs of zeros that gzip
// packs small. Undone here, frame by frame.
function undoDeltas(planes, ref) {
  const perFrame = ref.shape.slice(1).reduce((a, b) => a * b, 1);
  const frames = ref.shape[0];
  const out = new Uint16Array(frames * perFrame);
  for (let f = 0; f < frames; f++) {
    const low = f * perFrame * 2, high = low + perFrame, base = f * perFrame, before = base - perFrame;
    for (let k = 0; k < perFrame; k++) {
      const delta = planes[low + k] | (planes[high + k] << 8);
      out[base + k] = f === 0 ? delta : (out[before + k] + delta) & 0xffff;
    }
  }
  return new Uint8Array(out.buffer);
}

function layerlapseShow(models, data, arrays, timings) {
  "use strict";
  const NOT_DRAWN = 65535;  // the 16-bit code of a point a frame does not draw
  const COORD_STEPS = 65534;
  const TWEEN_MS = 350;  // while playing, points glide from one frame to the next over this time...
  const PAUSE_MS = 250;  // ...then rest on the frame
  const HIT_PX = 4;  // how far beyond a marker's edge a hover or click still finds it
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
  // its points lie on a point layer (pointlayer.js) under the Bokeh plot's frame.
  const views = models.plots.map((plot, k) => withPointLayer({
    plot, trailSource: models.trailSources[k], currentSource: models.currentSources[k],
  }));
  const dataMapView = models.dataMap && dynamics ? withPointLayer({plot: models.dataMap}) : null;
  const state = {epoch: models.slider.value, drawnEpoch: null, panelsEpoch: null, layer: 0, compare: null,
                 pinned: null, playing: false, tween: null, pointer: [0, 0], hovered: null, colorBy: "class",
                 colorValues: null, selected: null, selectedMask: new Uint8Array(sets.probe.n), region: "none",
                 dataMapByClass: false, looksKey: null, testLooksKey: null, selectionVersion: 0,
                 paintedEpoch: null};
  const tooltip = makeTooltip();
  document.addEventListener("pointermove", (event) => { state.pointer = [event.clientX, event.clientY]; },
                            {capture: true, passive: true});

  // A view's point layer, made when first used: a WebGL context and its shaders cost a few hundred ms in software
  // WebGL, so the compared map's is made only when a layer is compared.
  function withPointLayer(view) {
    let points = null;
    return Object.defineProperty(view, "points", {get: () => points || (points = makePointLayer())});
  }

  // ---- decoding ---------------------------------------------------------------------------------------------------

  function decodePoints(points) {
    return {n: points.n, labels: decodeArray(points.labels), rows: points.rows ? decodeArray(points.rows) : null,
            predicted: points.predicted ? decodeArray(points.predicted) : null,
            confidence: points.confidence ? decodeArray(points.confidence) : null,
            dynamics: points.dynamics ? Object.fromEntries(Object.entries(points.dynamics).map(
              ([name, packed]) => [name, decodeArray(packed)])) : null,
            thumbnails: makeThumbnails(points.atlases)};
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

  // ---- thumbnails: PNG atlases of `perAtlas` images each, decoded when one of their images is first needed ------

  function makeThumbnails(atlases) {
    if (!atlases) return null;
    const [height, width] = atlases.tile;
    const sheets = new Map();  // atlas number -> {image, ready}
    const cache = new Map();
    const sheet = (k) => {
      if (!sheets.has(k)) {
        const image = new Image();
        const ready = new Promise((resolve) => {
          image.onload = () => resolve(true);
          image.onerror = () => resolve(false);
        });
        image.src = "data:image/png;base64," +
          document.getElementById(`layerlapse-blob-${atlases.sheets[k]}`).textContent.trim();
        sheets.set(k, {image, ready});
      }
      return sheets.get(k);
    };
    return {
      width: width * atlases.scale, height: height * atlases.scale,
      // a promise that resolves once the atlases of these images are decoded (true: all loaded)
      load(indices) {
        const needed = new Set(Array.from(indices, (i) => Math.floor(i / atlases.perAtlas)));
        return Promise.all(Array.from(needed, (k) => sheet(k).ready)).then((loaded) => loaded.every(Boolean));
      },
      // image i as a data URI, or null until its atlas is decoded (the call starts decoding it)
      url(i) {
        const k = Math.floor(i / atlases.perAtlas);
        const {image} = sheet(k);
        if (!image.complete || !image.naturalWidth) return null;
        if (!cache.has(i)) {
          if (cache.size > 4000) cache.clear();
          const canvas = document.createElement("canvas");
          canvas.width = this.width;
          canvas.height = this.height;
          const context = canvas.getContext("2d");
          context.imageSmoothingEnabled = false;  // crisp pixels, like the frames' samples figure
          const tile = i % atlases.perAtlas;
          context.drawImage(image, (tile % atlases.columns) * width, Math.floor(tile / atlases.columns) * height,
                            width, height, 0, 0, this.width, this.height);
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
      lines.push(`${data.snapshotWord} ${state.epoch}: predicted ${classNames[points.predicted[k]]} (${confidence})`);
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

  // The probe points' looks on every map, as pointlayer.js draws them: alpha and outline (a ring around the marker)
  // per point and the order (hidden classes left out; the misclassified on top when ringed, the selected on top of
  // all), computed again only when what they depend on changed.
  function probeLooks() {
    const probe = sets.probe;
    const hidden = hiddenClasses();
    const highlight = models.highlightWrong.active && probe.predicted !== null;
    const selecting = state.selected !== null;
    const key = [hidden.join(), highlight ? state.epoch : -1, state.selectionVersion].join("|");
    if (key === state.looksKey) return null;
    state.looksKey = key;
    const alpha = new Uint8Array(probe.n), outline = new Uint8Array(probe.n);
    const passes = [[], [], [], []];  // by (selected, misclassified)
    let anyHidden = false;
    for (let i = 0; i < probe.n; i++) {
      if (hidden[probe.labels[i]]) {
        anyHidden = true;
        continue;
      }
      const wrong = highlight && isWrong("probe", i);
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
    for (const name of ["probe", "test"]) {
      const codes = layer.coords[name];
      if (!codes) {
        if (points.sets.has(name)) points.setVisible(name, false);
        continue;
      }
      const n = sets[name].n, test = name === "test";
      // test points: their class colour in a diamond with a dark edge, apart from the probe's round dots
      points.addSet(name, {n, frameCount: data.epochs.length, limits: layer.limits,
                           frames: (k) => codes.subarray(k * n * 2, (k + 1) * n * 2),
                           size: test ? data.marker.testSize : data.marker.size, shape: test ? "diamond" : "circle",
                           edge: test ? data.marks.testEdge : null, ring: data.marks.misclassified,
                           halo: data.marks.halo});
      if (test) points.setColors(name, classColors(sets.test.labels));
    }
    state.looksKey = state.testLooksKey = null;
    view.colored = null;
  }

  // Bring every map's points up to date with the state, then paint them (in the next animation frame).
  function drawPoints() {
    views.forEach((view, k) => { if (viewLayer(k)) showLayerOn(view, viewLayer(k)); });
    const looks = {probe: probeLooks(), test: testLooks()};  // null where nothing they depend on changed
    views.forEach((view, k) => {
      const layer = viewLayer(k);
      if (!layer) return;
      for (const name of ["probe", "test"]) {
        if (looks[name] && view.points.sets.has(name)) view.points.setLooks(name, looks[name]);
      }
      if (view.colored !== state.colorBy) {
        view.points.setColors("probe", pointColors());
        view.colored = state.colorBy;
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
    liveHtml(models.pinned, `<div class="layerlapse-pinned" style="display:flex;gap:10px;align-items:flex-start">` +
                            `${img}<div style="white-space:nowrap"><b>pinned</b><br>${lines}</div></div>`);
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
      let wrong = 0;
      for (let i = 0; i < sets.probe.n; i++) if (isWrong("probe", i)) wrong++;
      lines.push(`${wrong.toLocaleString("en")} of the page's ${sets.probe.n.toLocaleString("en")} probe points ` +
                 `misclassified at this ${data.snapshotWord} (ringed in red)`);
    }
    if (testShown(layer)) lines.push(testFigures());
    liveHtml(models.figures, lines.map(escapeHtml).join("<br>"), `title="${escapeHtml(MEASURES_HELP)}"`);
  }

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
        ink.push(share[k] > 0.6 ? "white" : "black");
      }
    }
    models.confusion.data = {true: models.confusion.data.true, predicted: models.confusion.data.predicted,
                             share, count, ink};
  }

  // A count that fits a confusion cell: 1234, 12k, 1.2M.
  function shortCount(value) {
    if (value < 10000) return String(value);
    if (value < 1e6) return `${Math.round(value / 1000)}k`;
    return `${(value / 1e6).toFixed(1)}M`;
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

  // The data map's points: one frame, (variability, confidence) as 16-bit codes within [0, 0.5] × [0, 1].
  function drawDataMap() {
    if (!dataMapView) return;
    const points = dataMapView.points;
    if (!points.sets.has("probe")) {
      const n = sets.probe.n, codes = new Uint16Array(n * 2);
      for (let i = 0; i < n; i++) {
        codes[2 * i] = Math.round(dynamics.variability[i] / 255 * COORD_STEPS);
        codes[2 * i + 1] = Math.round(dynamics.confidence[i] / 255 * COORD_STEPS);
      }
      points.addSet("probe", {n, frameCount: 1, frames: () => codes, limits: [0, data.variabilityMax, 0, 1],
                              size: Math.max(data.marker.size * 0.7, 2.5)});
    }
    const byClass = models.dataMapColor.value === "class";
    if (byClass !== state.dataMapByClass || dataMapView.colored === undefined) {
      // the mapper stays in step for what reads it; the points' colours are the layer's
      models.dataMapMapper.setv(byClass ? {palette: classPalette, low: -0.5, high: classPalette.length - 0.5}
                                        : {palette: dataMapPalette, low: 0, high: 1});
      models.dataMapColorBar.visible = !byClass;  // the classes' colours are the legend's
      points.setColors("probe", byClass
        ? {values: sets.probe.labels, low: -0.5, high: classPalette.length - 0.5, palette: classPalette}
        : {values: Float32Array.from(dynamics.correctness, (v) => v / 255), low: 0, high: 1,
           palette: dataMapPalette});
      state.dataMapByClass = byClass;
      dataMapView.colored = byClass;
    }
    const hidden = hiddenClasses();
    const selecting = state.selected !== null;
    const n = sets.probe.n;
    const alpha = new Uint8Array(n), outline = new Uint8Array(n), passes = [[], []];
    for (let i = 0; i < n; i++) {
      if (hidden[sets.probe.labels[i]]) continue;
      const selected = selecting && state.selectedMask[i];
      alpha[i] = Math.round((!selecting ? 0.6 : selected ? 0.95 : 0.08) * 255);
      passes[selected ? 1 : 0].push(i);
    }
    points.setLooks("probe", {alpha, outline, order: passes.flat()});
    requestPaint({maps: false});
  }

  // A box or lasso drawn on a map (k: 0, 1) or the data map ("dataMap") selects the points inside it, as drawn
  // now; Bokeh's select tools give the geometry in data units (the plots hold no points for them to select).
  function selectGeometry(geometry, final, k) {
    if (!final) return;
    const view = k === "dataMap" ? dataMapView : views[k];
    if (!view || !view.points.sets.has("probe")) return;
    let inside;
    if (geometry.type === "rect") {
      const [x0, x1] = [Math.min(geometry.x0, geometry.x1), Math.max(geometry.x0, geometry.x1)];
      const [y0, y1] = [Math.min(geometry.y0, geometry.y1), Math.max(geometry.y0, geometry.y1)];
      inside = (x, y) => x >= x0 && x <= x1 && y >= y0 && y <= y1;
    } else if (geometry.type === "poly") {
      const xs = Array.from(geometry.x), ys = Array.from(geometry.y);
      inside = (x, y) => {  // even-odd rule
        let within = false;
        for (let a = 0, b = xs.length - 1; a < xs.length; b = a++) {
          if ((ys[a] > y) !== (ys[b] > y) && x < (xs[b] - xs[a]) * (y - ys[a]) / (ys[b] - ys[a]) + xs[a]) {
            within = !within;
          }
        }
        return within;
      };
    } else return;
    const found = view.points.within("probe", k === "dataMap" ? 0 : state.epoch, inside);
    setSelection(found.length ? found : null, "none");
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
    state.selectionVersion++;
    if (models.region && models.region.value !== region) models.region.value = region;
    drawPoints();
    drawDataMap();
    drawSelectionList();
  }

  function drawSelectionList() {
    if (!models.selection) return;
    // the regions' definition, with this run's cut-offs, before the thumbnails: what "ambiguous" means here
    const regions = data.regionCutOffs ? `<div class="layerlapse-region-definition" style="font-size:11px;` +
                                         `color:#444;margin:4px 0">Regions: ${escapeHtml(
                                           data.regionCutOffs.definition)}.</div>` : "";
    if (state.selected === null) {
      models.selection.text = "<div class='layerlapse-selection'><i>choose a region, or drag a box or lasso on the " +
                              "data map or a map: the selected images are shown here and highlighted on the maps; " +
                              `a click on one pins it</i>${regions}</div>`;
      return;
    }
    const shown = state.selected.slice(0, data.selectionThumbnails);
    const items = shown.map((i) => pickHtml(i, 40, `#${rowOf("probe", i)}`, "")).join("");
    const more = state.selected.length > shown.length ? ` · the first ${shown.length} shown` : "";
    const region = state.region === "none" ? "" : ` (${escapeHtml(data.regionNames[state.region])})`;
    models.selection.text = `<div class="layerlapse-selection"><b class="layerlapse-selected-count">` +
                            `${state.selected.length.toLocaleString("en")} selected</b>${region}${more}` +
                            `${region ? regions : ""}` +
                            `<div style="display:flex;flex-wrap:wrap;gap:2px;margin-top:4px">${items}</div></div>`;
    whenThumbnailsLoad(shown, drawSelectionList);
  }

  // A clickable thumbnail (or, without images, the point's number) that pins point i; `caption` is escaped here.
  function pickHtml(i, size, title, caption) {
    const image = thumbnailHtml("probe", i, size) || `<span style="font-size:10px">#${rowOf("probe", i)}</span>`;
    const below = caption ? `<div style="font-size:10px;line-height:11px">${escapeHtml(caption)}</div>` : "";
    return `<div class="layerlapse-pick" data-point="${i}" title="${escapeHtml(title)}" ` +
           `style="cursor:pointer;text-align:center;width:${size + 4}px">${image}${below}</div>`;
  }

  // Draw again once the thumbnails of these probe images are decoded, if some were not yet.
  function whenThumbnailsLoad(indices, draw) {
    const thumbnails = sets.probe.thumbnails;
    if (thumbnails && indices.some((i) => !thumbnails.url(i))) {
      thumbnails.load(indices).then((loaded) => { if (loaded) draw(); });
    }
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
    whenThumbnailsLoad(Object.values(data.strips).flat().map((item) => item.i), drawStrips);
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
    models.changes.text = `<div class="layerlapse-changes" title="${escapeHtml(LAYER_MEASURES_HELP)}">` +
                          `${escapeHtml(words)}<br><span style="color:#666">` +
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
    // painted now, not in the next animation frame: Bokeh runs the slider's callback after the frame's callbacks
    // were chosen, so a paint requested here waited a frame more (bench/report_speed.py)
    paintNow();
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
        paintNow();  // the same two frames' codes, blended further on the GPU: nothing per point in JavaScript
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
    fitToWindow();
    drawFrame();
  }

  // ---- the page fits the window -------------------------------------------------------------------------------

  // The map (and the compared one) take the window's room beside the side column, down to the window's bottom:
  // the map is the largest thing on the page from a laptop's 1,024 × 700 (report.py's sizes) to a wide monitor.
  function fitToWindow() {
    const plotted = plotView(views[0].plot);
    if (!plotted) return;
    const {mapSize, compareSize, sideWidth, sideWidthMax} = data.layout;
    const top = plotted.el.getBoundingClientRect().top + window.scrollY;
    const room = document.documentElement.clientWidth - sideWidth - 56;  // the gaps between columns, a scrollbar
    const height = Math.max(mapSize[1], Math.min(window.innerHeight - top - 16, 1200));
    const comparing = state.compare !== null;
    // about as wide as tall, plus the legend and toolbar beside the frame (~130 px)
    const width = Math.max(mapSize[0], Math.min(comparing ? Math.round(room * 0.56) : room,
                                                Math.round((height - 40) * 1.2 + 130)));
    resize(views[0].plot, width, height);
    if (comparing) {
      const second = Math.max(compareSize[0], room - width - 10);
      resize(views[1].plot, second, Math.min(height, second));
    }
    // a window wider than the map needs (a wide monitor): the side column's curves and matrices take the rest
    widenSide(comparing ? sideWidth : Math.min(sideWidthMax, sideWidth + Math.max(0, room - width - 10)));
  }

  // Every panel of the side column (and of the layouts within it) that is as wide as the column, as wide as
  // `width`; heights stay.
  let sideShown = data.layout.sideWidth;
  function widenSide(width) {
    if (Math.abs(width - sideShown) <= 4) return;
    const widen = (model) => {
      if (model.children) model.children.forEach(widen);
      else if (model.width === sideShown) model.setv({width});
    };
    widen(models.side);
    sideShown = width;
  }

  function resize(plot, width, height) {
    if (Math.abs(plot.width - width) > 4 || Math.abs(plot.height - height) > 4) plot.setv({width, height});
  }

  let fitTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(fitTimer);
    fitTimer = setTimeout(fitToWindow, 150);
  });

  // The map's view of a layer's limits; the reset tool returns to it, not to the first layer's.
  function fitRanges(view, layer) {
    const [x0, x1, y0, y1] = layer.limits;
    view.plot.x_range.setv({start: x0, end: x1, reset_start: x0, reset_end: x1});
    view.plot.y_range.setv({start: y0, end: y1, reset_start: y0, reset_end: y1});
  }

  // ---- pointing: hover shows a tooltip, a click pins -------------------------------------------------------------

  // The shown point nearest to data position (x, y) within reach of its marker, as {set, i}, or null; the test
  // points lie on top, so of two as near they win.
  function pointAt(x, y, view = views[0]) {
    const points = view.points;
    const plot = view.plot;
    if (!points.sets.has("probe")) return null;
    const sx = (x - plot.x_range.start) / (plot.x_range.end - plot.x_range.start) * plot.inner_width;
    const sy = (1 - (y - plot.y_range.start) / (plot.y_range.end - plot.y_range.start)) * plot.inner_height;
    let best = null;
    for (const set of ["probe", "test"]) {
      if (!points.sets.has(set) || (set === "test" && !testShown(view.layer))) continue;
      const hit = points.nearest(set, sx, sy, state.epoch, HIT_PX);
      if (hit && (best === null || hit.distance <= best.distance)) best = {set, i: hit.i, distance: hit.distance};
    }
    return best && {set: best.set, i: best.i};
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
    else if (sets[hit.set].thumbnails) sets[hit.set].thumbnails.load([hit.i]).then(() => {
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

  // A model's Bokeh view, remembered while it stays on the page (Bokeh's index is searched whole on every query,
  // which took a tenth of a slider step's time).
  const knownViews = new Map();
  function plotView(plot = views[0].plot) {
    const known = knownViews.get(plot);
    if (known && known.model === plot && known.el && known.el.isConnected) return known;
    const index = window.Bokeh && window.Bokeh.index;
    const found = index && typeof index.query_one === "function" ? index.query_one((view) => view.model === plot)
                                                                  : null;
    if (found) knownViews.set(plot, found);
    return found;
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
            compare: compared ? compared.name : null, compareDrawn: compared ? drawnPoints(1).point.length : 0,
            panelsEpoch: state.panelsEpoch, paintedEpoch: state.paintedEpoch};
  }

  window.layerlapse = {
    ready: false, timings, state: currentState, setEpoch: (epoch) => setEpoch(epoch), setLayer, togglePlay, redraw,
    hover, tap, clientPosition, setColorBy, setCompare, selectRegion, selectGeometry, points: drawnPoints,
    repaint: requestPaint, mapCanvas: (k = 0) => views[k].points.canvas,
    paintedPixels: () => { paintNow(); return views[0].points.paintedPixels(); },
    select: (indices) => setSelection(indices === null ? null : Array.from(indices), "none"),
    pin: (i, set = "probe") => pin({set, i}), unpin: () => pin(null),
  };
  fitToWindow();
  drawMeasures();
  drawDataMap();
  drawSelectionList();
  setEpoch(state.epoch);
  paintNow();  // the first paint now, not in an animation frame: the page is whole when it says it is ready
  drawPanels();
  quietFocusOutlines();
  timings.drawn = performance.now();
  requestAnimationFrame(() => requestAnimationFrame(() => {
    window.layerlapse.ready = true;
    timings.ready = performance.now();
    window.layerlapseReady = true;
  }));
  // the strips' thumbnails decode their atlases (about 250 kB of PNG each): after the map is on screen
  setTimeout(drawStrips, 0);
}
