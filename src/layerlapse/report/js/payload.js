// The page's entry: Bokeh runs layerlapseStart once its document is ready, with the models it drives and the JSON
// payload page.py wrote (its format: contract.js). The payload's arrays are read from their own <script> tags
// here, then layerlapseShow (state.js and the parts after it) draws the page. The notebook widget shares this part:
// its arrays are decoded (packedArrays, decodeBlob) and its points placed (placeLayerSets) by the same functions.

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
  const arrays = new Map();
  await Promise.all(packedArrays(data).map(async (ref) => {
    const text = document.getElementById(`layerlapse-blob-${ref.blob}`).textContent;
    arrays.set(ref.blob, await decodeBlob(base64Bytes(text), ref));
  }));
  return arrays;
}

// The payload's packed arrays, wherever they are in it.
function packedArrays(data) {
  const refs = [];
  (function find(value) {
    if (value && typeof value === "object") {
      if (typeof value.blob === "number" && value.dtype) refs.push(value);
      else for (const item of Object.values(value)) find(item);
    }
  })(data);
  return refs;
}

// One packed array's bytes (as stored: gzip for "gzip", frame deltas for `delta`) as its typed array. The notebook
// widget decodes its binary buffers with this too.
async function decodeBlob(bytes, ref) {
  if (ref.encoding === "gzip") {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  }
  if (ref.delta) bytes = undoDeltas(bytes, ref);
  const Type = {uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, float32: Float32Array}[ref.dtype];
  if (bytes.byteOffset % Type.BYTES_PER_ELEMENT) bytes = bytes.slice();  // a typed array starts aligned
  return new Type(bytes.buffer, bytes.byteOffset, bytes.byteLength / Type.BYTES_PER_ELEMENT);
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
// frame before its high bytes (pack.py's `delta_planes`): points that hold still give runs of zeros that gzip
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

// A layer's probe and test points on a point layer (makePointLayer), as the report's maps and the notebook widget
// both draw them: the probe's round dots; the test points in their class colour, in a diamond with a dark edge,
// apart from the probe. `frames(name)` is the set's 16-bit codes of every frame on this layer, or null (no test
// points); `testColors` the test points' colours (setColors' argument).
function placeLayerSets(points, data, limits, frames, testColors) {
  for (const name of ["probe", "test"]) {
    const codes = data[name] ? frames(name) : null;
    if (!codes) {
      if (points.sets.has(name)) points.setVisible(name, false);
      continue;
    }
    const n = data[name].n, test = name === "test";
    points.addSet(name, {n, frameCount: data.epochs.length, limits,
                         frames: (k) => codes.subarray(k * n * 2, (k + 1) * n * 2),
                         size: test ? data.marker.testSize : data.marker.size, shape: test ? "diamond" : "circle",
                         edge: test ? data.marks.testEdge : null, ring: data.marks.misclassified,
                         halo: data.marks.halo});
    if (test) points.setColors(name, testColors());
  }
}
