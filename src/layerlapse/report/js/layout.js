// The page fits the window: the maps grow to the room beside the side column; Bokeh views found and kept.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

// The map (and the compared one) take the window's room beside the side column, down to the window's bottom:
// the map is the largest thing on the page from a laptop's 1,024 × 700 (style.py's sizes) to a wide monitor.
function fitToWindow() {
  const plotted = plotView(views[0].plot);
  if (!plotted) return;
  const {mapSize, sideWidth, sideWidthMax} = data.layout;
  const windowWidth = document.documentElement.clientWidth;
  if (windowWidth < mapSize[0] + sideWidth + 56) {
    fitNarrow(windowWidth);
    return;
  }
  narrowed(null);
  toolbarsAt("right");
  const top = plotted.el.getBoundingClientRect().top + window.scrollY;
  const room = document.documentElement.clientWidth - sideWidth - 56;  // the gaps between columns, a scrollbar
  const height = Math.max(mapSize[1], Math.min(window.innerHeight - top - 16, 1200));
  const comparing = state.compare !== null;
  // about as wide as tall, plus the legend and toolbar beside the frame (~130 px); two maps share the room beside
  // the side column, each down to a smaller least width, so that the side column stays beside them on a laptop's
  // screen (at 1,366 px the two maps' least widths had pushed it under them)
  const width = Math.max(comparing ? COMPARING_LEAST[0] : mapSize[0],
                         Math.min(comparing ? Math.round(room * 0.56) : room, Math.round((height - 40) * 1.2 + 130)));
  resize(views[0].plot, width, height);
  mapColumnWidth(comparing ? width : null);
  if (comparing) {
    const second = Math.max(COMPARING_LEAST[1], room - width - 10);
    resize(views[1].plot, second, Math.min(height, second));
  }
  // a window wider than the map needs (a wide monitor): the side column's curves and matrices take the rest
  widenSide(comparing ? sideWidth : Math.min(sideWidthMax, sideWidth + Math.max(0, room - width - 10)));
}

const COMPARING_LEAST = [460, 340];  // the two maps' least widths side by side (the first keeps its legend)

// A window too narrow for the map and the side column side by side (a phone, a narrow desktop window): everything
// one column wide, the map first, the compared map under it, then the panels (each row wraps, style.py); nothing
// wider than the window, so the page never scrolls sideways.
function fitNarrow(windowWidth) {
  const width = Math.max(240, windowWidth - 16);
  const height = Math.round(Math.min(Math.max(width * 0.9, 300), window.innerHeight * 0.8));
  toolbarsAt("above");  // the frame keeps the width the toolbar took beside it
  mapColumnWidth(null);
  resize(views[0].plot, width, height);
  if (state.compare !== null) resize(views[1].plot, width, height);
  widenSide(width);
  narrowed(width);
}

// The map's column as wide as the map (its controls and panels wrap within it: beside a compared map, the controls'
// row was wider than the map and pushed the side column under the maps), or as wide as what it holds (null).
function mapColumnWidth(width) {
  if (models.mapColumn && models.mapColumn.width !== width) models.mapColumn.width = width;
}

function toolbarsAt(where) {
  for (const view of views) if (view.plot.toolbar_location !== where) view.plot.toolbar_location = where;
}

// Every element wider than `width` as wide as it (null: each back to its own width), remembering its own.
const ownWidths = new Map();
function narrowed(width) {
  const walk = (model) => {
    if (model.children) {
      model.children.forEach((child) => walk(Array.isArray(child) ? child[0] : child));
      return;
    }
    if (typeof model.width !== "number" || views.some((view) => view.plot === model)) return;
    if (sideMembers.has(model)) return;  // widenSide's
    if (!ownWidths.has(model)) ownWidths.set(model, model.width);
    const own = ownWidths.get(model);
    const wanted = width === null || own <= width ? own : width;
    if (model.width !== wanted) model.setv({width: wanted});
  };
  walk(models.root);
}

// Every panel of the side column (and of the layouts within it) that is as wide as the column, as wide as
// `width`; heights stay.
let sideShown = data.layout.sideWidth;
const sideMembers = new Set();  // what widenSide sizes (narrowed leaves them to it)
function widenSide(width) {
  if (Math.abs(width - sideShown) <= 4) return;
  const widen = (model) => {
    if (model.children) model.children.forEach(widen);
    else if (model.width === sideShown) {
      sideMembers.add(model);
      model.setv({width});
    }
  };
  widen(models.side);
  sideShown = width;
}

function resize(plot, width, height) {
  if (Math.abs(plot.width - width) > 4 || Math.abs(plot.height - height) > 4) plot.setv({width, height});
}

let fitTimer = null;
listen(window, "resize", () => {
  clearTimeout(fitTimer);
  fitTimer = setTimeout(fitToWindow, 150);
});

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
