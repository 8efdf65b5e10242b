// The data map, and the selection it shares with the maps: a region, a box or a lasso selects; the selected
// images are listed, and a click on a listed thumbnail pins its point.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

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

// The selection: points (probe indices) or null for none; the region that chose them ("none" for any other way);
// the confusion cell that chose them ({true, predicted, epoch}, panels.js), kept as chosen when the slider moves;
// what else chose them, in words for its heading (a search, a kept selection: plain text, escaped when shown).
function setSelection(points, region, cell = null, label = null) {
  state.selectedMask.fill(0);
  state.selected = points === null ? null : Array.from(new Set(points.map(Number)))
    .filter((i) => Number.isInteger(i) && i >= 0 && i < sets.probe.n).sort((a, b) => a - b);
  for (const i of state.selected || []) state.selectedMask[i] = 1;
  state.region = region;
  state.selectedCell = state.selected === null ? null : cell;
  state.selectionLabel = state.selected === null ? null : label;
  drawConfusionMarks();
  state.selectionVersion++;
  if (models.region && models.region.value !== region) models.region.value = region;
  drawPoints();
  drawDataMap();
  drawSelectionList();
  noteView();
}

function drawSelectionList() {
  drawKeepTools();
  // the regions' definition, with this run's cut-offs, before the thumbnails: what "ambiguous" means here
  const regions = data.regionCutOffs ? `<div class="layerlapse-region-definition" style="font-size:11px;` +
                                       `opacity:0.8;margin:4px 0">Regions: ${escapeHtml(
                                         data.regionCutOffs.definition)}.</div>` : "";
  if (state.selected === null) {
    const where = (models.dataMap ? "choose a region, or drag a box or lasso on the data map or a map" :
      "drag a box or lasso on a map (the tools in its toolbar)") +
      (confusionParts() ? ", or click a cell of the confusion matrix" : "");
    const note = state.keepNote ? `<div class="layerlapse-keep-note">${escapeHtml(state.keepNote)}</div>` : "";
    models.selection.text = `<div class='layerlapse-selection'>${note}<i>${where}: the selected ${data.itemWord} ` +
                            `are listed here and highlighted on the maps; a click on one pins it</i>${regions}</div>`;
    return;
  }
  const shown = state.selected.slice(0, data.selectionThumbnails);
  // a run with texts lists the items' texts, each with its number and class (and thumbnail, where it has images)
  const texts = sets.probe.texts !== null;
  const items = shown.map((i) => texts
    ? textPickHtml(i, `#${rowOf("probe", i)}`, `#${rowOf("probe", i)} · ${classNames[sets.probe.labels[i]]}`)
    : pickHtml(i, 40, `#${rowOf("probe", i)}`, "")).join("");
  const more = state.selected.length > shown.length ? ` · the first ${shown.length} shown` : "";
  const region = state.region === "none" ? "" : ` (${escapeHtml(data.regionNames[state.region])})`;
  const count = state.selectedCell ? cellHeading(state.selectedCell, state.selected.length)
    : (state.selectionLabel ? `${escapeHtml(state.selectionLabel)}: ` : "") +
      `${state.selected.length.toLocaleString("en")} selected`;
  const note = state.keepNote ? `<div class="layerlapse-keep-note">${escapeHtml(state.keepNote)}</div>` : "";
  models.selection.text = `<div class="layerlapse-selection"><b class="layerlapse-selected-count">` +
                          `${count}</b>${region}${more}${note}` +
                          selectionByRun() +
                          `${region ? regions : ""}` +
                          `<div style="display:flex;flex-wrap:wrap;gap:2px;margin-top:4px` +
                          `${texts ? ";flex-direction:column" : ""}">${items}</div></div>`;
  whenThumbnailsLoad(shown, drawSelectionList);
}

// What a confusion cell chose, as markup (class names escaped): "true 4 → predicted 9 at epoch 7: 23 images", and,
// where the page shows a sample of the probe, how many the whole probe has there.
function cellHeading(cell, selected) {
  const word = selected === 1 ? data.itemWord.replace(/s$/, "") : data.itemWord;
  const whole = cellCount(cell);
  const of = sets.probe.rows && whole !== selected ? ` (the page's sample of ${whole.toLocaleString("en")} ` +
                                                     `in the whole probe)` : "";
  return `true ${escapeHtml(classNames[cell.true])} → predicted ${escapeHtml(classNames[cell.predicted])} at ` +
         `${escapeHtml(data.snapshotWord)} ${cell.epoch}: ${selected.toLocaleString("en")} ${word}${of}`;
}

// A click on a listed thumbnail pins its point. The Divs draw their text in shadow roots: composedPath sees in.
listen(document, "click", (event) => {
  for (const element of event.composedPath()) {
    if (element.classList && element.classList.contains("layerlapse-pick")) {
      pin({set: "probe", i: Number(element.dataset.point)});
      return;
    }
  }
});
