// Share: the view lives in the page's address, after its "#": the snapshot, the layer and the compared one, the
// colouring and the class colours, the toggles, the selection and the pinned point. A link copied from the address bar
// opens the page in that view; a fragment that names nothing on this page (or is malformed, or hostile) is ignored
// value by value, and nothing of it is ever shown or run: each value is checked against what the page has.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

const FRAGMENT_AT_MOST = 20_000;  // characters: a longer fragment is not read at all
const SELECTION_IN_LINK = 6_000;  // characters of the selection's index ranges; a larger selection stays out of it
const NOTE_VIEW_MS = 250;

// The view as the fragment's parameters (URLSearchParams, so every value is encoded).
function viewParameters() {
  const params = new URLSearchParams();
  params.set("s", String(state.epoch));
  params.set("layer", layers[state.layer].name);
  if (state.compare !== null) params.set("compare", layers[state.compare].name);
  if (state.colorBy !== "class") params.set("color", state.colorBy);
  if (state.palette !== "tab10") params.set("palette", state.palette);
  if (models.showTest.active) params.set("test", "1");
  if (models.highlightWrong.active) params.set("wrong", "1");
  if (state.selected !== null) {
    const ranges = rowRanges(state.selected.map((i) => rowOf("probe", i)));
    if (ranges.length <= SELECTION_IN_LINK) params.set("sel", ranges);
  }
  if (state.pinned) params.set("pin", `${state.pinned.set === "test" ? "test" : ""}${rowOf(state.pinned.set,
                                                                                       state.pinned.i)}`);
  return params;
}

// Sorted rows as ranges: 3-7.12.40-41
function rowRanges(rows) {
  const sorted = Array.from(rows).sort((a, b) => a - b), parts = [];
  for (let k = 0; k < sorted.length;) {
    let end = k;
    while (end + 1 < sorted.length && sorted[end + 1] === sorted[end] + 1) end++;
    parts.push(end > k ? `${sorted[k]}-${sorted[end]}` : `${sorted[k]}`);
    k = end + 1;
  }
  return parts.join(".");
}

// The rows of "3-7.12.40-41", or null where any part is not a range of the probe's rows.
function parseRanges(text, limit) {
  const rows = [];
  for (const part of text.split(".")) {
    const range = /^(\d{1,9})(?:-(\d{1,9}))?$/.exec(part);
    if (!range) return null;
    const start = Number(range[1]), end = range[2] === undefined ? start : Number(range[2]);
    if (end < start || end >= limit || rows.length + end - start + 1 > limit) return null;
    for (let row = start; row <= end; row++) rows.push(row);
  }
  return rows;
}

// The address follows the view, a moment after it rests (replaceState: no history entry per slider step).
let noteTimer = null;
function noteView() {
  if (!state.viewApplied || state.disposed) return;
  clearTimeout(noteTimer);
  noteTimer = setTimeout(() => {
    const fragment = `#${viewParameters().toString()}`;
    if (state.disposed || location.hash === fragment) return;
    try {
      history.replaceState(history.state, "", fragment);
    } catch (error) {
      // a page shown where its address cannot change (a sandboxed frame): the view just stays out of it
    }
  }, NOTE_VIEW_MS);
}

// Open the view a fragment names, value by value: what names nothing on this page is left as it is.
function applyFragment(hash) {
  let params = null;
  try {
    if (typeof hash === "string" && hash.length > 1 && hash.length <= FRAGMENT_AT_MOST) {
      params = new URLSearchParams(hash.slice(1));
    }
  } catch (error) {
    params = null;
  }
  if (params !== null) {
    try {
      applyParameters(params);
    } catch (error) {
      console.warn(`layerlapse: the link's view could not be opened whole (${error.message})`);
    }
  }
  state.viewApplied = true;
  if (params !== null) noteView();  // the address says the view opened: what was left out, left out of it too
}

function applyParameters(params) {
  const named = (key, names) => {
    const value = params.get(key);
    return value !== null && names.includes(value) ? value : null;
  };
  const names = layers.map((layer) => layer.name);
  const layer = named("layer", names);
  if (layer !== null) setLayer(layer);
  const compare = named("compare", names);
  if (compare !== null) setCompare(compare);
  const color = named("color", ["class", ...data.colorBy.map((option) => option.key)]);
  if (color !== null) setColorBy(color);
  const palette = named("palette", Object.keys(data.palettes).filter((key) => data.palettes[key]));
  if (palette !== null) setPalette(palette);
  for (const [key, toggle] of [["test", models.showTest], ["wrong", models.highlightWrong]]) {
    const on = named(key, ["0", "1"]);
    if (on !== null && !toggle.disabled) toggle.active = on === "1";
  }
  const epoch = /^\d{1,6}$/.test(params.get("s") || "") ? Number(params.get("s")) : null;
  if (epoch !== null && epoch <= lastEpoch) setEpoch(epoch);
  const rows = params.get("sel") ? parseRanges(params.get("sel"), probeRowLimit()) : null;
  if (rows) {
    const points = rows.map(pointOfRow).filter((i) => i !== null);
    if (points.length) setSelection(points, "none", null, "from the link");
  }
  const pinned = /^(test)?(\d{1,9})$/.exec(params.get("pin") || "");
  if (pinned) {
    const set = pinned[1] ? "test" : "probe";
    const i = set === "probe" ? pointOfRow(Number(pinned[2])) : testPointOfRow(Number(pinned[2]));
    if (i !== null) pin({set, i});
  }
}

// One past the largest row the page shows of the probe.
function probeRowLimit() {
  const rows = sets.probe.rows;
  if (!rows) return sets.probe.n;
  let largest = -1;
  for (let i = 0; i < rows.length; i++) if (rows[i] > largest) largest = rows[i];
  return largest + 1;
}

function testPointOfRow(row) {
  const test = sets.test;
  if (!test) return null;
  if (!test.rows) return row < test.n ? row : null;
  const i = Array.prototype.indexOf.call(test.rows, row);
  return i < 0 ? null : i;
}

// A link pasted into the address bar of the open page, or a link to another view of it followed
listen(window, "hashchange", () => applyFragment(location.hash));
