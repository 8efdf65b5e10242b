// The notebook widget (anywidget): the report's map, drawn by the report's own point layer (makePointLayer, joined
// before this file by notebook/esm.py, with the report's payload.js for undoDeltas and its thumbnails.js for the
// hover's images), with a slider, play, the layer, colouring by class or a measure, the test points, a hover
// thumbnail, the trail of a clicked point, and box and lasso selection that the kernel reads back.
//
// The model holds the report's payload (JSON, `payload`), its arrays as binary buffers (`arrays`: blob number ->
// bytes, raw little-endian or the report's gzip of frame deltas) and the thumbnail atlases' PNGs (`images`).
// `selected_points` (the page's point indices, sorted) goes back to the kernel; `frame` and `layer` both ways.

const MAP_PX = 520;
const STEP_MS = 450;  // playing: one snapshot to the next

// The payload's packed arrays ({blob, dtype, shape, encoding[, delta]}), from the model's buffers, decoded by the
// report's own code (payload.js: packedArrays, decodeBlob).
async function decodeArrays(data, buffers) {
  const arrays = new Map();
  await Promise.all(packedArrays(data).map(async (ref) => {
    const view = buffers[String(ref.blob)];
    arrays.set(ref.blob, await decodeBlob(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), ref));
  }));
  return arrays;
}

function bytesBase64(view) {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  if (typeof bytes.toBase64 === "function") return bytes.toBase64();
  let text = "";
  for (let k = 0; k < bytes.length; k += 0x8000) text += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
  return btoa(text);
}

// The report's thumbnails (thumbnails.js's makeThumbnails), reading each atlas's PNG from the model's buffers.
function widgetThumbnails(atlases, images) {
  if (!atlases) return null;
  return thumbnailParts()(atlases, (blob) => bytesBase64(images[blob]));
}

function element(tag, attributes = {}, parent = null) {
  const made = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "style") Object.assign(made.style, value);
    else if (key === "text") made.textContent = value;
    else made.setAttribute(key, value);
  }
  if (parent) parent.appendChild(made);
  return made;
}

// The widget's controls and map, laid out once.
function buildDom(el) {
  const root = element("div", {class: "layerlapse-widget", style: {fontFamily: "sans-serif", fontSize: "12px",
                                                                   color: "#222"}}, el);
  const bar = element("div", {style: {display: "flex", gap: "8px", alignItems: "center", flexWrap: "wrap",
                                      margin: "4px 0"}}, root);
  const dom = {root};
  dom.play = element("button", {text: "▶", title: "play the snapshots", class: "layerlapse-play"}, bar);
  dom.slider = element("input", {type: "range", min: "0", max: "0", value: "0", style: {width: "220px"}}, bar);
  dom.epoch = element("span", {style: {minWidth: "90px"}}, bar);
  element("span", {text: "layer"}, bar);
  dom.layer = element("select", {class: "layerlapse-layer"}, bar);
  element("span", {text: "colour"}, bar);
  dom.colorBy = element("select", {class: "layerlapse-color-by"}, bar);
  const testLabel = element("label", {}, bar);
  dom.showTest = element("input", {type: "checkbox", class: "layerlapse-show-test"}, testLabel);
  testLabel.append(" test points");
  element("span", {text: "select"}, bar);
  dom.tool = element("select", {class: "layerlapse-tool"}, bar);
  for (const tool of ["box", "lasso"]) element("option", {value: tool, text: tool}, dom.tool);
  dom.clear = element("button", {text: "clear"}, bar);
  const body = element("div", {style: {display: "flex", gap: "10px", alignItems: "flex-start"}}, root);
  dom.map = element("div", {class: "layerlapse-map", style: {position: "relative", width: `${MAP_PX}px`,
                                                            height: `${MAP_PX}px`, border: "1px solid #ddd",
                                                            background: "#fff", flex: "none"}}, body);
  dom.overlay = element("canvas", {class: "layerlapse-overlay", style: {position: "absolute", left: "0",
                                                                        top: "0", width: "100%", height: "100%",
                                                                        cursor: "crosshair"}}, dom.map);
  dom.tip = element("div", {style: {position: "absolute", display: "none", pointerEvents: "none",
                                    background: "rgba(255,255,255,0.95)", border: "1px solid #999",
                                    padding: "3px", zIndex: "2", whiteSpace: "nowrap"}}, dom.map);
  const side = element("div", {style: {maxWidth: "260px"}}, body);
  dom.legend = element("div", {}, side);
  dom.selection = element("div", {style: {marginTop: "8px"}}, side);
  dom.caption = element("div", {style: {marginTop: "4px", color: "#555"}}, root);
  return dom;
}

// One widget view: the model's run drawn on the report's point layer.
function makeLapseView(model, el) {
  const dom = buildDom(el);
  const points = makePointLayer({});
  dom.map.insertBefore(points.canvas, dom.overlay);
  const state = {data: null, arrays: null, frame: 0, layer: 0, colorBy: "class", selected: null, pinned: null,
                 playing: null, tween: null, showTest: false, version: 0, paintedFrame: null, texts: null};
  const hook = {ready: false, timings: {start: performance.now()}};
  el.layerlapse = hook;
  dom.root.layerlapse = hook;

  // ---- reading the model ----------------------------------------------------------------------------------------
  async function load() {
    const version = ++state.version;
    const data = JSON.parse(model.get("payload"));
    if (!data.layers) {  // a live recording's start: nothing mapped yet
      dom.caption.textContent = data.waiting || "";
      return;
    }
    const arrays = await decodeArrays(data, model.get("arrays"));
    if (version !== state.version) return;  // a newer reading arrived meanwhile
    const wasLast = state.data === null || state.frame >= state.data.epochs.length - 1;
    const first = state.data === null;
    state.data = data;
    state.arrays = arrays;
    // the items' texts (one JSON array, as the report's payload carries it), shown on hover as text
    state.texts = data.probe.texts ? JSON.parse(new TextDecoder().decode(arrays.get(data.probe.texts.blob))) : null;
    const atlasKey = JSON.stringify(data.probe.atlases);  // the same atlases: their decoded images are kept
    if (!state.thumbnails || state.atlasKey !== atlasKey) {
      state.thumbnails = widgetThumbnails(data.probe.atlases, model.get("images"));
      state.atlasKey = atlasKey;
    }
    const frames = data.epochs.length;
    dom.slider.max = String(frames - 1);
    const wanted = model.get("frame");
    state.frame = first && wanted >= 0 ? Math.min(wanted, frames - 1)
      : wasLast || state.frame > frames - 1 ? frames - 1 : state.frame;
    const layerName = model.get("layer");
    const layerIndex = data.layers.findIndex((layer) => layer.name === layerName);
    state.layer = layerIndex >= 0 ? layerIndex : Math.min(state.layer, data.layers.length - 1);
    fillControls();
    setLayer(state.layer, true);
    hook.timings.decoded = hook.timings.decoded || performance.now();
    paint();
    if (!hook.ready) {
      requestAnimationFrame(() => requestAnimationFrame(() => {
        hook.timings.ready = performance.now();
        hook.ready = true;
      }));
    }
  }

  function array(ref) {
    return ref ? state.arrays.get(ref.blob) : null;
  }

  function fillControls() {
    const data = state.data;
    dom.layer.replaceChildren(...data.layers.map((layer) => element("option", {value: layer.name,
                                                                                text: layer.name})));
    const options = [{key: "class", label: "class"}, ...(data.probe.dynamics ? data.colorBy : [])];
    dom.colorBy.replaceChildren(...options.map((option) => element("option", {value: option.key,
                                                                               text: option.label})));
    if (!options.some((option) => option.key === state.colorBy)) state.colorBy = "class";
    dom.colorBy.value = state.colorBy;
    dom.showTest.disabled = data.test === null;
    dom.legend.replaceChildren(...data.classNames.map((name, k) => {
      const row = element("div", {style: {display: "flex", alignItems: "center", gap: "4px"}});
      element("span", {style: {display: "inline-block", width: "10px", height: "10px", borderRadius: "5px",
                               background: data.classColors[k]}}, row);
      row.append(name);
      return row;
    }));
  }

  // ---- the point layer ----------------------------------------------------------------------------------------
  function setLayer(index, force = false) {
    if (index === state.layer && !force) return;
    state.layer = index;
    const data = state.data, layer = data.layers[index];
    dom.layer.value = layer.name;
    const [x0, x1, y0, y1] = layer.limits;
    const padX = (x1 - x0) * 0.03 || 1, padY = (y1 - y0) * 0.03 || 1;
    state.view = {x0: x0 - padX, x1: x1 + padX, y0: y0 - padY, y1: y1 + padY};
    placeLayerSets(points, data, layer.limits, (name) => array(name === "probe" ? layer.probe : layer.test),
                   () => classColors(array(data.test.labels)));  // the report's own (payload.js)
    if (model.get("layer") !== layer.name) {
      model.set("layer", layer.name);
      model.save_changes();
    }
    recolor();
    relook();
  }

  function classColors(labels) {
    const palette = state.data.classColors;
    return {values: labels, low: -0.5, high: palette.length - 0.5, palette};
  }

  function recolor() {
    const data = state.data;
    const measure = data.colorBy.find((option) => option.key === state.colorBy);
    if (!measure || !data.probe.dynamics) {
      points.setColors("probe", classColors(array(data.probe.labels)));
      return;
    }
    const bytes = array(data.probe.dynamics[measure.key]);
    const values = new Float64Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) {
      values[i] = bytes[i] === measure.missing ? NaN : bytes[i] * measure.scale + measure.offset;
    }
    points.setColors("probe", {values, low: measure.low, high: measure.high,
                               palette: measure.palette || data.sequentialPalette});
  }

  // Every point at the marker's alpha; a selection dims the others and is drawn on top.
  function relook() {
    const data = state.data, n = data.probe.n;
    const alpha = new Uint8Array(n), outline = new Uint8Array(n);
    const base = Math.round(data.marker.alpha * 255);
    const mask = state.selected === null ? null : new Uint8Array(n);
    if (mask) for (const i of state.selected) mask[i] = 1;
    const under = [], over = [];
    for (let i = 0; i < n; i++) {
      alpha[i] = mask === null ? base : mask[i] ? Math.max(base, 230) : Math.max(1, Math.round(base * 0.12));
      (mask && mask[i] ? over : under).push(i);
    }
    points.setLooks("probe", {alpha, outline, order: mask ? under.concat(over) : null});
    if (points.sets.has("test") && data.test) {
      const m = data.test.n;
      points.setLooks("test", {alpha: new Uint8Array(m).fill(255), outline: new Uint8Array(m), order: null});
      points.setVisible("test", state.showTest && array(data.layers[state.layer].test) !== null);
    }
  }

  // ---- painting -------------------------------------------------------------------------------------------------
  function paintNow() {
    if (!state.data) return;
    const from = state.tween ? state.tween.from : state.frame, t = state.tween ? state.tween.t : 1;
    points.place(0, 0, MAP_PX, MAP_PX, state.view);
    points.draw(from, state.frame, t);
    drawOverlay();
    state.paintedFrame = state.frame;
    const data = state.data;
    dom.slider.value = String(state.frame);
    dom.epoch.textContent = `${data.snapshotWord} ${data.epochs[state.frame]} / ${data.epochs.length - 1}`;
    const figures = data.layers[state.layer].figures[state.frame] || "";
    dom.caption.textContent = [data.epochFigures[state.frame], figures, ...(data.notes || [])]
      .filter(Boolean).join(" · ");
  }
  let pending = false;
  function paint() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      paintNow();
    });
  }

  function toScreen(xy) {
    const v = state.view;
    return [(xy[0] - v.x0) / (v.x1 - v.x0) * MAP_PX, (1 - (xy[1] - v.y0) / (v.y1 - v.y0)) * MAP_PX];
  }
  function toData(sx, sy) {
    const v = state.view;
    return [v.x0 + sx / MAP_PX * (v.x1 - v.x0), v.y0 + (1 - sy / MAP_PX) * (v.y1 - v.y0)];
  }
  function position(set, i, frame) {
    const layer = state.data.layers[state.layer];
    const codes = array(set === "probe" ? layer.probe : layer.test);
    if (!codes) return null;
    const n = state.data[set].n, at = (frame * n + i) * 2;
    if (codes[at] === 65535) return null;
    const [x0, x1, y0, y1] = layer.limits;
    return [x0 + codes[at] / 65534 * (x1 - x0), y0 + codes[at + 1] / 65534 * (y1 - y0)];
  }

  // The overlay: the pinned point's trail across the snapshots, and the selection's shape while it is drawn.
  function drawOverlay() {
    const ratio = window.devicePixelRatio || 1, canvas = dom.overlay;
    if (canvas.width !== MAP_PX * ratio) canvas.width = canvas.height = MAP_PX * ratio;
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, MAP_PX, MAP_PX);
    if (state.pinned !== null) {
      context.strokeStyle = "#333";
      context.lineWidth = 1.5;
      context.beginPath();
      let started = false;
      state.data.epochs.forEach((epoch, k) => {
        const xy = position("probe", state.pinned, k);
        if (!xy) return;
        const [sx, sy] = toScreen(xy);
        if (started) context.lineTo(sx, sy);
        else context.moveTo(sx, sy);
        started = true;
      });
      context.stroke();
      state.data.epochs.forEach((epoch, k) => {
        const xy = position("probe", state.pinned, k);
        if (!xy) return;
        const [sx, sy] = toScreen(xy);
        context.fillStyle = k === state.frame ? "#d62728" : "#333";
        context.beginPath();
        context.arc(sx, sy, k === state.frame ? 5 : 2.5, 0, 2 * Math.PI);
        context.fill();
      });
    }
    if (state.drag && state.drag.path.length > 1) {
      context.strokeStyle = "#1f77b4";
      context.fillStyle = "rgba(31,119,180,0.12)";
      context.beginPath();
      const path = state.drag.tool === "box" ? boxPath(state.drag.path) : state.drag.path;
      path.forEach(([sx, sy], k) => (k ? context.lineTo(sx, sy) : context.moveTo(sx, sy)));
      context.closePath();
      context.fill();
      context.stroke();
    }
  }

  return wireView({model, dom, points, state, hook, load, paint, paintNow, setLayer, recolor, relook, toScreen,
                   toData, position, array});
}

function boxPath(path) {
  const [a, b] = [path[0], path[path.length - 1]];
  return [[a[0], a[1]], [b[0], a[1]], [b[0], b[1]], [a[0], b[1]]];
}

function insidePolygon(polygon, x, y) {
  let inside = false;
  for (let k = 0, j = polygon.length - 1; k < polygon.length; j = k++) {
    const [xk, yk] = polygon[k], [xj, yj] = polygon[j];
    if ((yk > y) !== (yj > y) && x < (xj - xk) * (y - yk) / (yj - yk) + xk) inside = !inside;
  }
  return inside;
}
