// Find: what is typed in the find box selects the probe items it names, and Enter pins the first of them.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.
//
// What the box understands, each word a filter that every match passes:
//   #3121 or 3121          the probe item of that index (its row in the run folder, as the page names it)
//   dataset:3121           the item at that place in its dataset (where the run stored it)
//   true:cat, class:cat    the items of that class (a class's name, or its number)
//   predicted:dog, pred:   the items predicted as that class at the shown snapshot
//   is:wrong, is:right     misclassified, or not, at the shown snapshot
//   anything else          a class's whole name, else words found in the items' texts (case ignored)
// A query is text the reader typed: it is matched, never run, and shown back only as text.

const FIND_AT_MOST = 200;  // characters of a query read (a pasted page of text is cut, not searched whole)
const FILTERS = {true: "true", class: "true", label: "true", predicted: "predicted", pred: "predicted",
                 dataset: "dataset", is: "is"};

let findTimer = null;
function find(query, {pin: pinFirst = false} = {}) {
  clearTimeout(findTimer);
  if (pinFirst) {
    runFind(query, true);
    return;
  }
  findTimer = setTimeout(() => runFind(query, false), 120);  // typing: once the keys rest
}

function runFind(query, pinFirst) {
  const text = String(query || "").slice(0, FIND_AT_MOST).trim();
  state.findQuery = text;
  state.keepNote = null;
  if (text === "") {
    if (state.selectionLabel && state.selectionLabel.startsWith("find")) setSelection(null, "none");
    else drawSelectionList();
    return;
  }
  const found = matches(text);
  if (found.error) {
    state.keepNote = found.error;
    setSelection(null, "none");
    return;
  }
  if (found.points.length === 0) {
    state.keepNote = `find “${text}”: nothing matches`;
    setSelection(null, "none");
    return;
  }
  setSelection(found.points, "none", null, `find “${text}”`);
  if (pinFirst || found.points.length === 1) pin({set: "probe", i: found.points[0]});
}

// The probe points a query names, in probe order, or {error} for a filter that names nothing on this page.
function matches(text) {
  const probe = sets.probe;
  const tests = [];
  const words = [];
  for (const word of text.split(/\s+/)) {
    const index = /^#?(\d+)$/.exec(word);
    const filter = /^([a-z]+):(.+)$/i.exec(word);
    if (index) {
      const i = pointOfRow(Number(index[1]));
      if (i === null) return {error: `find: no probe item #${index[1]} on this page` + (probe.rows ? " (it shows a " +
                                      "sample of the probe)" : ` (its indices run 0–${probe.n - 1})`)};
      tests.push((k) => k === i);
    } else if (filter && FILTERS[filter[1].toLowerCase()]) {
      const test = filterTest(FILTERS[filter[1].toLowerCase()], filter[2]);
      if (typeof test === "string") return {error: test};
      tests.push(test);
    } else {
      words.push(word);
    }
  }
  if (words.length) {
    const rest = words.join(" ");
    const named = classOf(rest);
    if (named !== null) tests.push((k) => probe.labels[k] === named);
    else if (probe.texts) {
      const needle = rest.toLowerCase(), texts = probe.texts();
      tests.push((k) => typeof texts[k] === "string" && texts[k].toLowerCase().includes(needle));
    } else return {error: `find: no class is named “${rest}” (this run's items have no texts to search)`};
  }
  const points = [];
  for (let k = 0; k < probe.n; k++) if (tests.every((test) => test(k))) points.push(k);
  return {points};
}

// A filter's test of point k, or the one line that says why it names nothing.
function filterTest(kind, value) {
  const probe = sets.probe;
  if (kind === "dataset") {
    if (!probe.datasetIndex) return "find: this run stored no dataset indices (dataset:N needs them)";
    const wanted = Number(value);
    return (k) => probe.datasetIndex[k] === wanted;
  }
  if (kind === "is") {
    const wrong = value.toLowerCase() === "wrong" || value.toLowerCase() === "misclassified";
    if (!wrong && value.toLowerCase() !== "right" && value.toLowerCase() !== "correct") {
      return `find: is:${value} is not a filter (is:wrong or is:right)`;
    }
    if (!probe.predicted && !comparison) return "find: this run stored no predictions (is:wrong needs them)";
    return (k) => isWrong("probe", k) === wrong;
  }
  const named = classOf(value);
  if (named === null) return `find: no class is named “${value}” (the classes: ${shortList(classNames)})`;
  if (kind === "true") return (k) => probe.labels[k] === named;
  if (!probe.predicted && !comparison) return "find: this run stored no predictions (predicted: needs them)";
  const run = comparison ? extra[`pred${runOfMap(0)}`] : probe.predicted;
  return (k) => run[state.epoch * probe.n + k] === named;
}

// The class a word names: its whole name (case ignored), else its number; null where none.
function classOf(word) {
  const lower = word.toLowerCase();
  const byName = classNames.findIndex((name) => String(name).toLowerCase() === lower);
  if (byName >= 0) return byName;
  const number = /^\d+$/.test(word) ? Number(word) : -1;
  return number >= 0 && number < classNames.length ? number : null;
}

function shortList(names) {
  const shown = names.slice(0, 6).join(", ");
  return names.length > 6 ? `${shown}, …` : shown;
}

// The page's point of a run-folder row, or null where the page does not show that row (a subsample).
let pointsByRow = null;
function pointOfRow(row) {
  const probe = sets.probe;
  if (!probe.rows) return Number.isInteger(row) && row >= 0 && row < probe.n ? row : null;
  if (pointsByRow === null) pointsByRow = new Map(Array.from(probe.rows, (r, i) => [r, i]));
  const i = pointsByRow.get(row);
  return i === undefined ? null : i;
}

// "/" anywhere but in a text field puts the cursor in the find box, as on map and search sites.
listen(document, "keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.composedPath()[0];
  if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable)) return;
  const view = plotView(models.find);
  const input = view && view.el.shadowRoot && view.el.shadowRoot.querySelector("input");
  if (!input) return;
  event.preventDefault();
  input.focus();
});
