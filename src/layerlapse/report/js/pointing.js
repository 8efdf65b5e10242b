// Pointing: hover shows a tooltip, a click pins.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

// The shown point nearest to data position (x, y) within reach of its marker, as {set, i}, or null; the test
// points lie on top, so of two as near they win.
function pointAt(x, y, view = views[0]) {
  const points = view.points;
  const plot = view.plot;
  if (!points.sets.has("probe")) return null;
  const sx = (x - plot.x_range.start) / (plot.x_range.end - plot.x_range.start) * plot.inner_width;
  const sy = (1 - (y - plot.y_range.start) / (plot.y_range.end - plot.y_range.start)) * plot.inner_height;
  let best = null;
  for (const set of ["probe", "test"]) {
    if (!points.sets.has(set) || (set === "test" && !testShown(view.layer))) continue;
    const hit = points.nearest(set, sx, sy, state.epoch, HIT_PX);
    if (hit && (best === null || hit.distance <= best.distance)) best = {set, i: hit.i, distance: hit.distance};
  }
  return best && {set: best.set, i: best.i};
}

function makeTooltip() {
  const element = document.createElement("div");
  element.id = "layerlapse-tooltip";
  Object.assign(element.style, {position: "fixed", display: "none", zIndex: 1000, pointerEvents: "none",
                                background: "white", border: "1px solid #888", borderRadius: "4px",
                                padding: "6px", font: "12px sans-serif", boxShadow: "0 2px 6px rgba(0,0,0,.3)",
                                maxWidth: `${TOOLTIP_TEXT_PX}px`});
  document.body.appendChild(element);
  return element;
}

function showTooltip(hit) {
  tooltip.replaceChildren();
  const img = thumbnailElement(hit.set, hit.i);
  if (img) tooltip.appendChild(img);
  else if (sets[hit.set].thumbnails) sets[hit.set].thumbnails.load([hit.i]).then(() => {
    if (state.hovered && state.hovered.set === hit.set && state.hovered.i === hit.i) showTooltip(hit);
  });
  const text = textOf(hit.set, hit.i);
  if (text !== null) tooltip.appendChild(clampedText(text, TOOLTIP_TEXT_LINES));
  for (const line of describe(hit.set, hit.i)) {
    const div = document.createElement("div");
    div.className = "layerlapse-tooltip-line";
    div.textContent = line;  // text, never markup: class names come from the user's data
    tooltip.appendChild(div);
  }
  const [x, y] = state.pointer;
  tooltip.style.display = "block";
  const width = tooltip.offsetWidth || 200, height = tooltip.offsetHeight || 160;
  tooltip.style.left = `${Math.max(0, Math.min(x + 14, window.innerWidth - width - 4))}px`;
  tooltip.style.top = `${Math.max(0, Math.min(y + 14, window.innerHeight - height - 4))}px`;
}

// An item's text as an element, set as text (never markup), cut to `lines` lines with an ellipsis.
function clampedText(text, lines) {
  const div = document.createElement("div");
  div.className = "layerlapse-tooltip-text";
  div.textContent = text;
  Object.assign(div.style, {display: "-webkit-box", webkitBoxOrient: "vertical", webkitLineClamp: String(lines),
                            overflow: "hidden", whiteSpace: "pre-wrap", overflowWrap: "anywhere",
                            margin: "0 0 4px", font: "13px/16px sans-serif", color: "#111"});
  return div;
}

function hover(event, k = 0) {
  const hit = event ? pointAt(event.x, event.y, views[k]) : null;
  const changed = (hit && hit.i) !== (state.hovered && state.hovered.i) || (hit && hit.set) !==
    (state.hovered && state.hovered.set);
  state.hovered = hit;
  if (hit) showTooltip(hit);
  else tooltip.style.display = "none";
  if (changed) ringOnOtherMap(hit, k);
}

// The hovered point ringed on the other map too (a comparison's other run, or the compared layer).
function ringOnOtherMap(hit, k) {
  views.forEach((view, j) => {
    const layer = viewLayer(j);
    const xy = hit && j !== k && layer ? position(hit.set, hit.i, state.epoch, layer) : null;
    if (xy) view.hoverSource.data = {x: [xy[0]], y: [xy[1]]};
    else if (view.hoverSource.data.x.length) view.hoverSource.data = {x: [], y: []};
  });
}

function tap(event, k = 0) {
  pin(pointAt(event.x, event.y, views[k]));
}

function pin(hit) {
  state.pinned = hit;
  drawTrail();
  drawPinned();
  noteView();
}
