// Where the point layer's points are: the nearest to a place, those inside a region, the drawn rows (for
// tests), and the point layer's interface.
// A part of the point layer's closure, makePointLayer(options): script.py joins the parts in its fixed order
// inside that function, so they share its canvas, context, sets and view by scope.

// Point i's data position from its codes in two frames blended by t, or null where the frame does not draw it.
function dataOf(set, i, a, b, t) {
  const toX = b[2 * i], toY = b[2 * i + 1];
  if (toX === NOT_DRAWN) return null;
  let cx = toX, cy = toY;
  const fromX = a[2 * i], fromY = a[2 * i + 1];
  if (t < 1 && fromX !== NOT_DRAWN) {
    cx = fromX + (toX - fromX) * t;
    cy = fromY + (toY - fromY) * t;
  }
  const [x0, x1, y0, y1] = set.limits;
  return [x0 + cx / COORD_STEPS * (x1 - x0), y0 + cy / COORD_STEPS * (y1 - y0)];
}

// ... in CSS pixels of the canvas
function screenOf(set, i, a, b, t) {
  const xy = dataOf(set, i, a, b, t);
  if (xy === null) return null;
  return [(xy[0] - view.x0) / (view.x1 - view.x0) * view.width,
          (1 - (xy[1] - view.y0) / (view.y1 - view.y0)) * view.height];
}

// The drawn point of a set nearest to (sx, sy) (CSS pixels of the canvas) within `reach` pixels of its marker's
// edge, as {i, distance}, or null; of two at the same distance, the one drawn later (on top).
function nearest(name, sx, sy, frame, reach) {
  const set = sets.get(name);
  if (!set || !set.visible || set.look === null) return null;
  const codes = set.frames(frame);
  const limit = set.size / 2 + reach;
  let best = -1, bestDistance = Infinity;
  const count = set.order === null ? set.n : set.order.length;
  for (let k = 0; k < count; k++) {
    const i = set.order === null ? k : set.order[k];
    if (set.look[2 * i] === 0) continue;
    const xy = screenOf(set, i, codes, codes, 1);
    if (xy === null) continue;
    const distance = Math.hypot(xy[0] - sx, xy[1] - sy);
    if (distance <= limit && distance <= bestDistance) {
      best = i;
      bestDistance = distance;
    }
  }
  return best < 0 ? null : {i: best, distance: bestDistance};
}

// The drawn points of a set inside a region of data space (`inside(x, y)`), at a frame, in index order.
function within(name, frame, inside) {
  const set = sets.get(name);
  const codes = set.frames(frame);
  const found = [];
  for (let i = 0; i < set.n; i++) {
    if (set.look !== null && set.look[2 * i] === 0) continue;
    const xy = dataOf(set, i, codes, codes, 1);
    if (xy !== null && inside(xy[0], xy[1])) found.push(i);
  }
  return found;
}

// What the tests read: the drawn rows of a set in drawing order, with their data position, alpha and outline.
function drawnRows(name, frame) {
  const set = sets.get(name);
  const rows = {point: [], x: [], y: [], alpha: [], outline: []};
  if (!set || !set.visible || set.look === null) return rows;
  const codes = set.frames(frame);
  const count = set.order === null ? set.n : set.order.length;
  for (let k = 0; k < count; k++) {
    const i = set.order === null ? k : set.order[k];
    if (set.look[2 * i] === 0) continue;
    const xy = dataOf(set, i, codes, codes, 1);
    if (xy === null) continue;
    rows.point.push(i);
    rows.x.push(xy[0]);
    rows.y.push(xy[1]);
    rows.alpha.push(set.look[2 * i] / 255);
    rows.outline.push(set.look[2 * i + 1] / 255);
  }
  return rows;
}

// How many of the canvas's pixels the last draw painted (for tests: call right after `draw`, in the same task).
function paintedPixels() {
  const bytes = new Uint8Array(canvas.width * canvas.height * 4);
  if (gl) gl.readPixels(0, 0, canvas.width, canvas.height, gl.RGBA, gl.UNSIGNED_BYTE, bytes);
  else bytes.set(context2d.getImageData(0, 0, canvas.width, canvas.height).data);
  let painted = 0;
  for (let k = 3; k < bytes.length; k += 4) if (bytes[k] > 0) painted++;
  return painted;
}

// The layer is no longer shown: its WebGL context is given back at once (browsers keep only some).
function dispose() {
  if (gl) giveBack(gl);
  canvas.remove();
}

return {canvas, webgl: browserWebgl, renderer, paintedPixels, addSet, setColors, setLooks, setVisible, place, draw,
        nearest, within, drawnRows, sets, dispose};
