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
  const HIT_PX = 4;  // how far beyond a marker's edge a hover or click still finds it

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
  timings.decoded = performance.now();
  const state = {epoch: models.slider.value, drawnEpoch: null, layer: 0, pinned: null, playing: false,
                 tween: null, pointer: [0, 0], hovered: null};
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
            thumbnails: makeThumbnails(points.atlas)};
  }

  // The position of point i of a set at an epoch in the current layer, or null where that frame does not draw it.
  function position(set, i, epoch, layer = layers[state.layer]) {
    const codes = layer.coords[set];
    if (!codes) return null;
    const k = (epoch * sets[set].n + i) * 2;
    if (codes[k] === NOT_DRAWN) return null;
    const [x0, x1, y0, y1] = layer.limits;
    return [x0 + codes[k] / COORD_STEPS * (x1 - x0), y0 + codes[k + 1] / COORD_STEPS * (y1 - y0)];
  }

  // Between two frames while playing: each point on the straight line from its old place to its new one.
  function shownPosition(set, i) {
    const to = position(set, i, state.epoch);
    if (!state.tween || !to) return to;
    const from = position(set, i, state.tween.from);
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

  // Probe points in one data source (the misclassified last when outlined, so they lie on top); the test points,
  // gold stars as in the PNG frames, in another, drawn over them.
  function drawPoints() {
    const hidden = hiddenClasses();
    const probe = sets.probe;
    const highlight = models.highlightWrong.active && probe.predicted !== null;
    const rows = [];
    for (const wrongPass of highlight ? [false, true] : [null]) {
      for (let i = 0; i < probe.n; i++) {
        if (!hidden[probe.labels[i]] && (wrongPass === null || isWrong("probe", i) === wrongPass)) rows.push(i);
      }
    }
    const columns = {x: new Float64Array(rows.length), y: new Float64Array(rows.length),
                     cls: new Float64Array(rows.length), point: new Int32Array(rows.length),
                     alpha: new Float32Array(rows.length), outline: new Float32Array(rows.length)};
    const alpha = data.marker.alpha;
    rows.forEach((i, row) => {
      placeRow(columns, row, "probe", i);
      const wrong = highlight && isWrong("probe", i);
      columns.cls[row] = probe.labels[i];
      columns.alpha[row] = !highlight ? alpha : wrong ? 1.0 : alpha * 0.2;
      columns.outline[row] = wrong ? 1.0 : 0.0;
    });
    models.pointSource.data = columns;
    drawTestPoints(hidden);
  }

  function drawTestPoints(hidden) {
    const rows = [];
    if (testShown()) {
      for (let i = 0; i < sets.test.n; i++) if (!hidden[sets.test.labels[i]]) rows.push(i);
    }
    const columns = {x: new Float64Array(rows.length), y: new Float64Array(rows.length),
                     point: new Int32Array(rows.length)};
    rows.forEach((i, row) => placeRow(columns, row, "test", i));
    models.testRenderer.visible = rows.length > 0;
    models.testSource.data = columns;
  }

  function placeRow(columns, row, set, i) {
    const xy = shownPosition(set, i);
    columns.x[row] = xy ? xy[0] : NaN;
    columns.y[row] = xy ? xy[1] : NaN;
    columns.point[row] = i;
  }

  function testShown() {
    return sets.test !== null && models.showTest.active && layers[state.layer].coords.test !== null;
  }

  function drawTrail() {
    const pinned = state.pinned;
    if (pinned === null || !layers[state.layer].coords[pinned.set]) {
      models.trailSource.data = {x: [], y: [], x_next: [], y_next: [], epoch: [], label: []};
      models.currentSource.data = {x: [], y: []};
      return;
    }
    const x = [], y = [], epoch = [], label = [];
    for (const e of data.epochs) {
      const xy = position(pinned.set, pinned.i, e);
      x.push(xy ? xy[0] : NaN);
      y.push(xy ? xy[1] : NaN);
      epoch.push(e);
      label.push(String(e));
    }
    // segment k runs from epoch k to epoch k + 1; the last row has none
    const next = (values) => [...values.slice(1), NaN];
    models.trailSource.data = {x, y, x_next: next(x), y_next: next(y), epoch, label};
    const now = position(pinned.set, pinned.i, state.epoch);
    models.currentSource.data = now ? {x: [now[0]], y: [now[1]]} : {x: [], y: []};
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
    if (models.highlightWrong.active && sets.probe.predicted) {
      let wrong = 0;
      for (let i = 0; i < sets.probe.n; i++) if (isWrong("probe", i)) wrong++;
      lines.push(`${wrong.toLocaleString("en")} of the page's ${sets.probe.n.toLocaleString("en")} probe points ` +
                 `misclassified at this epoch (outlined)`);
    }
    models.figures.text = `<div class="layerlapse-figures">${lines.map(escapeHtml).join("<br>")}</div>`;
    for (const span of models.spans) span.location = state.epoch;
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

  function redraw() {
    drawPoints();
    drawTrail();
    drawPinned();
    drawFigures();
    drawConfusion();
    state.drawnEpoch = state.epoch;
  }

  // ---- time: the slider, and playing -------------------------------------------------------------------------------

  function setEpoch(epoch, {fromPlayer = false} = {}) {
    epoch = Math.max(0, Math.min(lastEpoch, Math.round(Number(epoch))));
    if (!fromPlayer && state.playing && epoch !== state.epoch) stopPlaying();  // the user took the slider
    if (epoch === state.epoch && state.drawnEpoch === epoch && !state.tween) return;
    state.epoch = epoch;
    state.tween = null;
    redraw();
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
    const [x0, x1, y0, y1] = layers[index].limits;
    // the reset tool returns to this layer's view, not the first layer's
    models.plot.x_range.setv({start: x0, end: x1, reset_start: x0, reset_end: x1});
    models.plot.y_range.setv({start: y0, end: y1, reset_start: y0, reset_end: y1});
    redraw();
  }

  // ---- pointing: hover shows a tooltip, a click pins -------------------------------------------------------------

  // The shown point nearest to data position (x, y) within reach of its marker, as {set, i}, or null.
  function pointAt(x, y) {
    const plot = models.plot;
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
    search("probe", models.pointSource, data.marker.size);
    search("test", models.testSource, data.marker.testSize);  // drawn over the probe
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

  function hover(event) {
    const hit = event ? pointAt(event.x, event.y) : null;
    state.hovered = hit;
    if (hit) showTooltip(hit);
    else tooltip.style.display = "none";
  }

  function tap(event) {
    pin(pointAt(event.x, event.y));
  }

  function pin(hit) {
    state.pinned = hit;
    drawTrail();
    drawPinned();
  }

  // ---- the hook for tests and benchmarks (documented in report.py) -------------------------------------------------

  function plotView() {
    const index = window.Bokeh && window.Bokeh.index;
    return index && typeof index.query_one === "function" ? index.query_one((view) => view.model === models.plot)
                                                            : null;
  }

  function clientPosition(i, set = "probe") {
    const xy = position(set, i, state.epoch);
    const view = plotView();
    if (!xy || !view) return null;
    const rect = view.canvas_view.el.getBoundingClientRect();
    return {x: rect.left + view.frame.x_scale.compute(xy[0]), y: rect.top + view.frame.y_scale.compute(xy[1])};
  }

  function currentState() {
    const xs = models.pointSource.data.x;
    let drawn = 0;
    for (let row = 0; row < xs.length; row++) if (Number.isFinite(xs[row])) drawn++;
    const view = plotView();
    return {epoch: state.epoch, layer: layers[state.layer].name, layers: layers.map((layer) => layer.name),
            total: sets.probe.n, shown: xs.length, drawn, testShown: models.testSource.data.x.length,
            testVisible: models.testRenderer.visible,
            trail: models.trailSource.data.x.length, pinned: state.pinned,
            webgl: Boolean(view && view.canvas_view.webgl), playing: state.playing};
  }

  window.layerlapse = {
    ready: false, timings, state: currentState, setEpoch: (epoch) => setEpoch(epoch), setLayer, togglePlay, redraw,
    hover, tap, clientPosition,
    pin: (i, set = "probe") => pin({set, i}), unpin: () => pin(null),
  };
  setEpoch(state.epoch);
  timings.drawn = performance.now();
  requestAnimationFrame(() => requestAnimationFrame(() => {
    window.layerlapse.ready = true;
    timings.ready = performance.now();
    window.layerlapseReady = true;
  }));
}
