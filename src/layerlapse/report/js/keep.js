// Keep: the selection leaves the page as a CSV of its rows or its ids on the clipboard, and is kept under a name in
// this browser (localStorage) to come back to from the "kept selections" choice.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

const KEPT_AT_MOST = 50;  // kept selections per report; the oldest goes past this
const KEEP_NAME_CHARS = 60;
// kept selections are stored by run folder rows, so a report written again at the same place (another sample, other
// layers) finds them
const KEPT_KEY = `layerlapse-kept:${location.pathname}|${data.title || ""}`;

// The selection's tools on when there is a selection; the kept ones listed.
function drawKeepTools() {
  const none = state.selected === null;
  for (const button of [models.selectionCsv, models.selectionCopy, models.keepName]) {
    if (button && button.disabled !== none) button.disabled = none;
  }
  listKept();
}

// The selection's rows as the page shows them: index, dataset index, class, prediction and confidence at the shown
// snapshot, the colouring's measures, the map position, the text.
function selectionRows() {
  const probe = sets.probe, epoch = state.epoch;
  const measures = data.colorBy.filter((option) => option.source !== "comparison" && dynamics && dynamics[option.key]);
  const header = ["probe_index", ...(probe.datasetIndex ? ["dataset_index"] : []), "true_class",
                  ...(probe.predicted ? [`predicted_class_${data.snapshotWord}_${epoch}`, "confidence", "correct"] : []),
                  ...measures.map((option) => CSV_MEASURE_NAMES[option.key] || option.key),
                  `x_${layers[state.layer].name}`, `y_${layers[state.layer].name}`, ...(probe.texts ? ["text"] : [])];
  const rows = (state.selected || []).map((i) => {
    const k = epoch * probe.n + i, xy = position("probe", i, epoch);
    return [rowOf("probe", i), ...(probe.datasetIndex ? [probe.datasetIndex[i]] : []), classNames[probe.labels[i]],
            ...(probe.predicted ? [classNames[probe.predicted[k]], (probe.confidence[k] / 255).toFixed(3),
                                   probe.predicted[k] === probe.labels[i] ? 1 : 0] : []),
            ...measures.map((option) => measureValue(option, i)),
            xy ? +xy[0].toPrecision(6) : "", xy ? +xy[1].toPrecision(6) : "",
            ...(probe.texts ? [textOf("probe", i)] : [])];
  });
  return [header, ...rows];
}

// the dynamics' columns, named apart from the snapshot's own confidence
const CSV_MEASURE_NAMES = {confidence: "mean_confidence", firstLearned: "first_learned", forgetting: "forgetting_events"};

function measureValue(option, i) {
  const byte = dynamics[option.key][i];
  return byte === option.missing ? "" : +(byte * option.scale + option.offset).toFixed(4);
}

// RFC 4180 quoting; a field a spreadsheet would read as a formula (=, +, -, @ first) is kept as text
function csvField(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function selectionCsv() {
  return selectionRows().map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
}

function downloadSelection() {
  if (state.selected === null) return;
  const blob = new Blob([selectionCsv()], {type: "text/csv;charset=utf-8"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `selection-${layers[state.layer].name}-${data.snapshotWord}${state.epoch}.csv`
    .replace(/[^\w.-]+/g, "_");
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  say(`downloaded ${state.selected.length.toLocaleString("en")} rows as ${link.download}`);
}

// The selected items' probe indices, comma-separated (a Python list's or a spreadsheet column's worth).
function selectionIds() {
  return (state.selected || []).map((i) => rowOf("probe", i)).join(", ");
}

async function copySelection() {
  if (state.selected === null) return;
  const text = selectionIds(), count = state.selected.length.toLocaleString("en");
  try {
    await navigator.clipboard.writeText(text);
    say(`copied ${count} probe indices`);
  } catch (error) {
    // a page whose clipboard is closed to it (an old browser, a frame): the older way, then the reason
    const area = document.createElement("textarea");
    area.value = text;
    Object.assign(area.style, {position: "fixed", opacity: "0"});
    document.body.appendChild(area);
    area.select();
    const copied = document.execCommand && document.execCommand("copy");
    area.remove();
    say(copied ? `copied ${count} probe indices` : `the browser did not let the page copy (${error.message})`);
  }
}

// A line under the selection's heading: what the last action did (text, escaped when shown).
function say(note) {
  state.keepNote = note;
  drawSelectionList();
}

// Kept selections: [{name, rows}] in this browser's storage for this report (none where storage is closed).
function keptSelections() {
  try {
    const stored = JSON.parse(window.localStorage.getItem(KEPT_KEY) || "[]");
    return Array.isArray(stored) ? stored.filter((kept) => kept && typeof kept.name === "string" &&
      Array.isArray(kept.rows) && kept.rows.every(Number.isInteger)).slice(-KEPT_AT_MOST) : [];
  } catch (error) {
    return [];
  }
}

function keepSelection(name) {
  name = String(name || "").trim().slice(0, KEEP_NAME_CHARS);
  if (!name || state.selected === null) return;
  const rows = state.selected.map((i) => rowOf("probe", i));
  const kept = [...keptSelections().filter((other) => other.name !== name), {name, rows}].slice(-KEPT_AT_MOST);
  try {
    window.localStorage.setItem(KEPT_KEY, JSON.stringify(kept));
    say(`kept as “${name}” in this browser: “kept selections” brings it back`);
  } catch (error) {
    say(`the browser keeps nothing for this page (${error.message}); the CSV or the page's link keeps it`);
  }
  models.keepName.value = "";
  listKept();
}

function recallSelection(name) {
  if (!name) return;
  const kept = keptSelections().find((other) => other.name === name);
  models.kept.value = "";  // the choice is an action: the same one again recalls it again
  if (!kept) return;
  const points = kept.rows.map(pointOfRow).filter((i) => i !== null);
  state.keepNote = points.length < kept.rows.length
    ? `${(kept.rows.length - points.length).toLocaleString("en")} of its items are not on this page` : null;
  setSelection(points.length ? points : null, "none", null, `kept “${name}”`);
}

let keptListed = null;
function listKept() {
  const kept = keptSelections();
  const key = JSON.stringify(kept.map((one) => [one.name, one.rows.length]));
  if (key === keptListed || !models.kept) return;
  keptListed = key;
  models.kept.options = [["", kept.length ? `kept selections (${kept.length})` : "kept selections (none yet)"],
                         ...kept.map((one) => [one.name, `${one.name} (${one.rows.length.toLocaleString("en")})`])];
  models.kept.disabled = kept.length === 0;
}
