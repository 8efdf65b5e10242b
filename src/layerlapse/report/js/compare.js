// A comparison of runs (layerlapse compare): each of the page's layers is one run's layer, the maps side by side
// show two runs (or two layers), and what differs between the runs shown is measured: CKA between their layers,
// each item's nearest-neighbour overlap, whether each run got it right, when each learned it. Everything here
// reads `comparison` and does nothing on a run's own report (where it is null).
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

const comparison = data.comparison || null;
const extra = sets.probe.extra || {};

// The runs the two maps show: the left map's, and the right map's (or, with one map, the first other run).
function shownRuns() {
  const left = comparison.layerRun[state.layer];
  const right = state.compare !== null ? comparison.layerRun[state.compare]
    : comparison.runs.findIndex((run, k) => k !== left);
  return [left, right];
}

// The layers the two maps show, as each run's own layer index (the right one: the compared layer, or the right
// run's layer of the same place).
function shownLayers() {
  const [left, right] = shownRuns();
  const leftLayer = comparison.layerOf[state.layer];
  const rightLayer = state.compare !== null ? comparison.layerOf[state.compare]
    : Math.min(leftLayer, comparison.runs[right].layers.length - 1);
  return [leftLayer, rightLayer, left, right];
}

// The run map k shows (0: the left map's, 1: the right map's).
function runOfMap(k) {
  return comparison.layerRun[k === 0 || state.compare === null ? state.layer : state.compare];
}

// What is measured between the left run and the right one (null for a run against itself): their layers' CKA at a
// frame, and the neighbour overlap of a left layer and a right one (stored once per pair, the lower run first).
function pairOf(left, right) {
  const pair = comparison.pairs.find((found) => found.left === Math.min(left, right) &&
                                               found.right === Math.max(left, right));
  if (!pair) return null;
  const flipped = left > right;
  return {
    cka: (frame, a, b) => flipped ? pair.cka[frame][b][a] : pair.cka[frame][a][b],
    overlap: (a, b) => extra[`overlap${pair.left}_${pair.right}_${flipped ? `${b}_${a}` : `${a}_${b}`}`],
  };
}

// One line per run for a point's description: what each run predicts at this snapshot.
function runLines(i) {
  const n = sets.probe.n;
  return comparison.runs.map((run, r) => {
    const k = state.epoch * n + i;
    const predicted = extra[`pred${r}`][k], confidence = (extra[`conf${r}`][k] / 255).toFixed(2);
    const mark = predicted === sets.probe.labels[i] ? "right" : "wrong";
    return `${run.name}: predicted ${classNames[predicted]} (${confidence}, ${mark})`;
  });
}

// Both right (0), the left run only (1), the right only (2), neither (3): measures.AGREEMENT's codes.
function agreementCode(left, right, label) {
  return left === label ? (right === label ? 0 : 1) : (right === label ? 2 : 3);
}

// The key of what a comparison colouring depends on: a new snapshot or another pair of maps colours anew.
function comparisonColorKey() {
  return comparison ? `${state.epoch}|${state.layer}|${state.compare}` : "";
}

// Per item the value a comparison colouring maps (NaN: none, drawn grey).
function comparisonValues(key) {
  const n = sets.probe.n, frame = state.epoch * n;
  const [leftLayer, rightLayer, left, right] = shownLayers();
  const values = new Float64Array(n).fill(NaN);
  if (key === "learnedShare") {
    const runs = comparison.runs.length;
    for (let i = 0; i < n; i++) {
      let learned = 0;
      for (let r = 0; r < runs; r++) learned += extra[`learned${r}`][i];
      values[i] = learned / runs;
    }
    return values;
  }
  if (left === right) return values;  // one run against itself: nothing differs
  if (key === "agreement") {
    const a = extra[`pred${left}`], b = extra[`pred${right}`], labels = sets.probe.labels;
    for (let i = 0; i < n; i++) values[i] = agreementCode(a[frame + i], b[frame + i], labels[i]);
  } else if (key === "overlap") {
    const bytes = pairOf(left, right).overlap(leftLayer, rightLayer);
    for (let i = 0; i < n; i++) {
      const v = bytes[frame + i];
      values[i] = v === 255 ? NaN : v / comparison.neighbourK;
    }
  } else if (key === "learnedBy") {
    const a = extra[`learned${left}`], b = extra[`learned${right}`];
    for (let i = 0; i < n; i++) values[i] = a[i] && b[i] ? 0 : a[i] ? 1 : b[i] ? 2 : 3;
  } else if (key === "forgottenMore") {
    const a = extra[`forget${left}`], b = extra[`forget${right}`];
    for (let i = 0; i < n; i++) values[i] = b[i] - a[i];
  } else if (key === "learnedLater") {
    const a = extra[`first${left}`], b = extra[`first${right}`];
    for (let i = 0; i < n; i++) values[i] = a[i] && b[i] ? b[i] - a[i] : NaN;
  }
  return values;
}

// The panels that follow the slider and the maps' runs: CKA between the shown runs' layers, the runs' accuracy and
// agreement at this snapshot, and the confusion matrices' difference.
function drawComparison() {
  if (!comparison) return;
  const [leftLayer, rightLayer, left, right] = shownLayers();
  liveHtml(models.compareTable, ckaTable(left, right, leftLayer, rightLayer) + agreementLine(left, right) +
           confusionDifference(left, right));
  drawComparisonCurves(left, right, leftLayer, rightLayer);
}

function ckaTable(left, right, leftLayer, rightLayer) {
  const runs = comparison.runs, found = pairOf(left, right);
  const head = `<div class="layerlapse-runs-cka-heading"><b>linear CKA, ${escapeHtml(runs[left].name)} (rows) × ` +
               `${escapeHtml(runs[right].name)} (columns)</b>, ${data.snapshotWord} ${state.epoch} ` +
               `<span style="opacity:0.7">(on ${comparison.ckaItems.toLocaleString("en")} items)</span></div>`;
  if (!found) return head + "<i>one run against itself</i>";
  const value = (a, b) => found.cka(state.epoch, a, b);
  const columns = runs[right].layerNames.map((name) => `<th style="font-weight:normal">${escapeHtml(name)}</th>`);
  const rows = runs[left].layerNames.map((name, a) => {
    const cells = runs[right].layerNames.map((_, b) => {
      const v = value(a, b);
      const shown = a === leftLayer && b === rightLayer ? "outline:2px solid black;" : "";
      const color = v === null ? "#eee" : data.sequentialPalette[Math.round(Math.max(0, Math.min(1, v)) * 255)];
      const ink = v !== null && v < 0.6 ? "white" : "black";
      return `<td class="layerlapse-runs-cka-cell" style="background:${color};color:${ink};${shown}` +
             `text-align:center;padding:2px 6px">${v === null ? "–" : v.toFixed(2)}</td>`;
    });
    return `<tr><th style="font-weight:normal;text-align:right">${escapeHtml(name)}</th>${cells.join("")}</tr>`;
  });
  return `${head}<table class="layerlapse-runs-cka" style="border-collapse:collapse;font-size:11px;margin:2px 0">` +
         `<tr><th></th>${columns.join("")}</tr>${rows.join("")}</table>`;
}

// At this snapshot: how many items both runs get right, only one, neither.
function agreementLine(left, right) {
  const n = sets.probe.n, frame = state.epoch * n, labels = sets.probe.labels;
  const a = extra[`pred${left}`], b = extra[`pred${right}`];
  const counts = [0, 0, 0, 0];
  let same = 0;
  for (let i = 0; i < n; i++) {
    counts[agreementCode(a[frame + i], b[frame + i], labels[i])]++;
    if (a[frame + i] === b[frame + i]) same++;
  }
  const names = comparison.runs;
  const share = (count) => (count / Math.max(n, 1)).toFixed(3);
  return `<div class="layerlapse-agreement" style="font-size:11px;margin:3px 0">both right ${share(counts[0])} · ` +
         `${escapeHtml(names[left].name)} only ${share(counts[1])} · ${escapeHtml(names[right].name)} only ` +
         `${share(counts[2])} · both wrong ${share(counts[3])} · same prediction ${share(same)}</div>`;
}

// The confusion matrices' difference at this snapshot, left run − right run: a cell is the items of true class
// (row) predicted as (column) by one run more than by the other; only the cells that differ are inked.
function confusionDifference(left, right) {
  const classes = classNames.length, n = sets.probe.n, frame = state.epoch * n, labels = sets.probe.labels;
  if (classes > 20) return "";
  const a = extra[`pred${left}`], b = extra[`pred${right}`];
  const difference = new Int32Array(classes * classes);
  for (let i = 0; i < n; i++) {
    difference[labels[i] * classes + a[frame + i]]++;
    difference[labels[i] * classes + b[frame + i]]--;
  }
  const most = Math.max(1, ...Array.from(difference, Math.abs));
  const header = classNames.map((name) => `<th style="font-weight:normal">${escapeHtml(shortLabel(name))}</th>`);
  const rows = classNames.map((name, t) => {
    const cells = classNames.map((_, p) => {
      const v = difference[t * classes + p], strength = Math.abs(v) / most;
      const color = v > 0 ? `rgba(31,119,180,${strength})` : v < 0 ? `rgba(214,39,40,${strength})` : "transparent";
      return `<td style="background:${color};text-align:center;min-width:16px">${v ? (v > 0 ? "+" : "") + v : ""}</td>`;
    });
    return `<tr><th style="font-weight:normal">${escapeHtml(shortLabel(name))}</th>${cells.join("")}</tr>`;
  });
  const names = comparison.runs;
  return `<div style="font-size:11px;margin-top:4px"><b>confusion, ${escapeHtml(names[left].name)} − ` +
         `${escapeHtml(names[right].name)}</b> (rows true, columns predicted; blue: more in ` +
         `${escapeHtml(names[left].name)}, red: more in ${escapeHtml(names[right].name)})</div>` +
         `<table class="layerlapse-confusion-difference" style="border-collapse:collapse;font-size:10px">` +
         `<tr><th></th>${header.join("")}</tr>${rows.join("")}</table>`;
}

function shortLabel(name) {
  return name.length > 6 ? `${name.slice(0, 5)}…` : name;
}

// Over the snapshots, for the maps shown: CKA of their two layers, their items' mean neighbour overlap, and the
// share of items both runs get right, and of items they predict alike.
let curvesKey = null;
function drawComparisonCurves(left, right, leftLayer, rightLayer) {
  const key = [left, right, leftLayer, rightLayer].join("|");
  if (key === curvesKey) return;  // they follow the maps' pair, not the snapshot: new data repaints the plot
  curvesKey = key;
  const frames = data.epochs.length, n = sets.probe.n, labels = sets.probe.labels;
  const found = left === right ? null : pairOf(left, right);
  const cka = [], overlap = [], both = [], same = [];
  const overlapBytes = found && found.overlap(leftLayer, rightLayer);
  const a = extra[`pred${left}`], b = extra[`pred${right}`];
  for (let f = 0; f < frames; f++) {
    const value = found ? found.cka(f, leftLayer, rightLayer) : null;
    cka.push(value === null ? NaN : value);
    let total = 0, counted = 0, bothRight = 0, alike = 0;
    for (let i = 0; i < n; i++) {
      if (found) {
        const v = overlapBytes[f * n + i];
        if (v !== 255) { total += v; counted++; }
      }
      const k = f * n + i;
      if (a[k] === labels[i] && b[k] === labels[i]) bothRight++;
      if (a[k] === b[k]) alike++;
    }
    overlap.push(counted ? total / counted / comparison.neighbourK : NaN);
    both.push(bothRight / Math.max(n, 1));
    same.push(alike / Math.max(n, 1));
  }
  models.compareCurves.data = {frame: data.epochs.slice(), cka, overlap, both, same};
}

// Of the selected items: how each run fares at this snapshot (a line above the selection's thumbnails).
function selectionByRun() {
  if (!comparison || state.selected === null) return "";
  const [, , left, right] = shownLayers();
  const n = sets.probe.n, frame = state.epoch * n, labels = sets.probe.labels;
  const a = extra[`pred${left}`], b = extra[`pred${right}`];
  let rightA = 0, rightB = 0;
  for (const i of state.selected) {
    if (a[frame + i] === labels[i]) rightA++;
    if (b[frame + i] === labels[i]) rightB++;
  }
  const of = state.selected.length;
  return `<div class="layerlapse-selection-runs" style="font-size:11px">right at this ${data.snapshotWord}: ` +
         `${escapeHtml(comparison.runs[left].name)} ${rightA} of ${of}, ` +
         `${escapeHtml(comparison.runs[right].name)} ${rightB} of ${of}</div>`;
}

// The second map as the page opens: the first other run's first layer, side by side with the first run's.
function startComparison() {
  if (comparison && comparison.initialCompare !== null) setCompare(comparison.initialCompare);
}
