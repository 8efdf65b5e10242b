// The point layer's sets of points: their colours, looks and visibility, the view, and drawing them.
// A part of the point layer's closure, makePointLayer(options): script.py joins the parts in its fixed order
// inside that function, so they share its canvas, context, sets and view by scope.

const parsed = new Map();
function rgba(color) {
  if (!parsed.has(color)) {
    const probe = document.createElement("canvas").getContext("2d");
    probe.fillStyle = color;
    const hex = probe.fillStyle;  // the browser's own parse: "#rrggbb" (or rgba() for translucent colours)
    const value = hex.startsWith("#") ? [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16))
                                      : hex.match(/[\d.]+/g).slice(0, 3).map(Number);
    parsed.set(color, [...value, 255]);
  }
  return parsed.get(color);
}

// Tone: where a value falls in the palette, as Bokeh's LinearColorMapper places it (outside low..high: the end
// colours), or -1 for a missing value (NaN).
function tones(values, low, high) {
  const out = new Float32Array(values.length);
  const span = high - low;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = Number.isNaN(v) ? -1 : Math.min(Math.max((v - low) / span, 0), 0.999999);
  }
  return out;
}

// A set: n points, their positions per frame (`frames(k)` gives frame k's Uint16Array of (x, y) codes within
// `limits`), and how each is drawn: marker `size` in CSS pixels, `shape` "circle" or "diamond", an `edge` colour
// around every marker (or null), and the `ring` and `halo` colours an outlined point is ringed with.
function addSet(name, {n, frameCount, frames, limits, size, shape = "circle", edge = null, ring = "#ff0000",
                       halo = "#ffffff"}) {
  if (sets.has(name)) freeSet(sets.get(name));  // a set added again (another layer, a live refresh)
  const set = {name, n, frameCount, frames, limits, size, diamond: shape === "diamond", edge, ring, halo,
               visible: true, tone: null, look: null, order: null,
               gpu: gl ? {positions: new Array(frameCount).fill(null)} : null, palette: null, missing: "#bbbbbb"};
  sets.set(name, set);
  return set;
}

// A set's GPU buffers and palette texture, given back: nothing of a replaced set stays on the GPU.
function freeSet(set) {
  if (!gl || !set.gpu) return;
  for (const made of [...set.gpu.positions, set.gpu.tone, set.gpu.look, set.gpu.order]) {
    if (made) gl.deleteBuffer(made);
  }
  if (set.gpu.palette) gl.deleteTexture(set.gpu.palette);
  set.gpu = {positions: new Array(set.frameCount).fill(null)};
}

function framePositions(set, k) {
  if (!gl) return set.frames(k);
  if (set.gpu.positions[k] === null) set.gpu.positions[k] = buffer(gl.ARRAY_BUFFER, set.frames(k));
  return set.gpu.positions[k];
}

// Colours: per point a value, mapped over low..high onto the palette; missing values (NaN) get `missing`.
function setColors(name, {values, low, high, palette, missing = "#bbbbbb"}) {
  const set = sets.get(name);
  set.tone = tones(values, low, high);
  set.palette = palette.slice();
  set.paletteRgba = set.palette.map(rgba);
  set.missing = missing;
  if (gl) {
    if (set.gpu.tone) gl.deleteBuffer(set.gpu.tone);
    if (set.gpu.palette) gl.deleteTexture(set.gpu.palette);
    set.gpu.tone = buffer(gl.ARRAY_BUFFER, set.tone);
    set.gpu.palette = paletteTexture(set.palette);
  }
}

// Looks: per point an alpha and an outline (bytes, 0..255; alpha 0 hides it), and the order to draw them in
// (later on top; points left out are not drawn), or null for every point in its own order.
function setLooks(name, {alpha, outline, order}) {
  const set = sets.get(name);
  const look = new Uint8Array(set.n * 2);
  for (let i = 0; i < set.n; i++) {
    look[2 * i] = alpha[i];
    look[2 * i + 1] = outline[i];
  }
  set.look = look;
  set.alpha = alpha;
  set.outline = outline;
  set.order = order;
  if (gl) {
    if (set.gpu.look) gl.deleteBuffer(set.gpu.look);
    if (set.gpu.order) gl.deleteBuffer(set.gpu.order);
    set.gpu.look = buffer(gl.ARRAY_BUFFER, look);
    set.gpu.order = order === null ? null : buffer(gl.ELEMENT_ARRAY_BUFFER, indexType === "uint32"
      ? Uint32Array.from(order) : Uint16Array.from(order));
    set.gpu.count = order === null ? set.n : order.length;
  }
}

function setVisible(name, visible) {
  sets.get(name).visible = visible;
}

// The frame's place (CSS pixels, in the element the canvas lies in) and the data ranges it shows.
function place(left, top, width, height, ranges) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(width * ratio)), h = Math.max(1, Math.round(height * ratio));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  Object.assign(canvas.style, {left: `${left}px`, top: `${top}px`, width: `${width}px`, height: `${height}px`});
  Object.assign(view, ranges, {width, height, ratio});
}

// Draw every visible set blended between frames `from` and `to` (t: 0 = from, 1 = to), in the order added.
function draw(from, to, t) {
  if (gl) drawGl(from, to, t);
  else draw2d(from, to, t);
}
