// The point layer's CPU drawing: each point's pixels blended into a premultiplied buffer, then put on a 2-D
// canvas (where there is no WebGL, or only a software one).
// A part of the point layer's closure, makePointLayer(options): script.py joins the parts in its fixed order
// inside that function, so they share its canvas, context, sets and view by scope.

let image = null, pixels = null, buffer32 = null;
const masks = new Map();

// An outlined marker's halo and halo + ring, in device pixels.
function ringPx(ratio) {
  return {halo: Math.max(1, Math.round(HALO_CSS_PX * ratio)),
          ring: Math.max(2, Math.round((HALO_CSS_PX + RING_CSS_PX) * ratio))};
}

// The pixels a marker covers, as offsets from its centre, each with its part (`part`): 0 the fill, 1 its rim
// (where an edge goes), and with a `ring` (device pixels, halo included) 2 the halo and 3 the ring, which lie
// outside the marker, from the circle through its tips.
const FILL = 0, RIM = 1, HALO = 2, RING = 3;
function markerMask(diameter, diamond, ring = 0, halo = 0) {
  const key = `${diameter}:${diamond}:${ring}:${halo}`;
  if (!masks.has(key)) {
    const radius = diameter / 2, dx = [], dy = [], part = [];
    const reach = Math.ceil(radius + ring);
    for (let y = -reach; y <= reach; y++) {
      for (let x = -reach; x <= reach; x++) {
        const cx = x + (diameter % 2 ? 0 : 0.5), cy = y + (diameter % 2 ? 0 : 0.5);
        const round = Math.hypot(cx, cy) / radius;
        const r = diamond ? (Math.abs(cx) + Math.abs(cy)) / radius : round;
        let kind;
        if (r <= 1) kind = r > 1 - 1.2 / radius ? RIM : FILL;
        else if (ring > 0 && round > 1 && round <= 1 + ring / radius) {
          kind = round <= 1 + halo / radius ? HALO : RING;
        }
        else continue;
        dx.push(x);
        dy.push(y);
        part.push(kind);
      }
    }
    masks.set(key, {dx: Int32Array.from(dx), dy: Int32Array.from(dy), part: Uint8Array.from(part), reach,
                    offsets: null, width: 0});
  }
  return masks.get(key);
}

// A marker's pixels as offsets into the RGBA buffer of a canvas `width` pixels wide, from its centre's
function maskOffsets(mask, width) {
  if (mask.width !== width) {
    mask.offsets = Int32Array.from(mask.dx, (dx, m) => (mask.dy[m] * width + dx) * 4);
    mask.width = width;
  }
  return mask.offsets;
}

function draw2d(from, to, t) {
  const width = canvas.width, height = canvas.height;
  if (image === null || image.width !== width || image.height !== height) {
    image = context2d.createImageData(width, height);
    pixels = new Float32Array(width * height * 4);  // premultiplied r, g, b, a in 0..1
    buffer32 = new Uint32Array(image.data.buffer);
  }
  pixels.fill(0);
  const sx = width / (view.x1 - view.x0), sy = height / (view.y1 - view.y0);
  const ring = ringPx(view.ratio);
  for (const set of sets.values()) {
    if (!set.visible || set.look === null || set.tone === null) continue;
    const a = set.frames(from), b = set.frames(to), blend = from === to ? 1 : t;
    const diameter = Math.max(1, Math.round(set.size * view.ratio));
    const plain = markerMask(diameter, set.diamond);
    const ringed = markerMask(diameter, set.diamond, ring.ring, ring.halo);
    const offsets = maskOffsets(plain, width), reach = plain.reach, size = plain.dx.length;
    const colors = colorTable(set);
    const marks = [set.edge || "#000000", set.halo, set.ring].map((color) => rgba(color).map((v) => v / 255));
    const [x0, x1, y0, y1] = set.limits;
    const kx = (x1 - x0) / COORD_STEPS, ky = (y1 - y0) / COORD_STEPS;
    const count = set.order === null ? set.n : set.order.length;
    for (let k = 0; k < count; k++) {
      const i = set.order === null ? k : set.order[k];
      const alpha = set.look[2 * i] / 255;
      const toX = b[2 * i];
      if (alpha <= 0 || toX === NOT_DRAWN) continue;
      let cx = toX, cy = b[2 * i + 1];
      const fromX = a[2 * i];
      if (blend < 1 && fromX !== NOT_DRAWN) {
        cx = fromX + (cx - fromX) * blend;
        cy = a[2 * i + 1] + (cy - a[2 * i + 1]) * blend;
      }
      const px = Math.round((x0 + cx * kx - view.x0) * sx), py = Math.round(height - (y0 + cy * ky - view.y0) * sy);
      const outline = set.look[2 * i + 1] > 0;
      // "over" in premultiplied colour: the ink's share is `weight`, the pixel keeps the rest (an edge, halo and
      // ring are opaque); the same arithmetic, operation for operation, in either loop. It is written out
      // in both on purpose: as small functions, Chromium 150's V8 did not inline them and a million-point
      // step took 119 ms instead of 71 (bench/report_speed.py)
      const keep = 1 - alpha, weight = 1 - keep;
      const r = colors[3 * i] * weight, g = colors[3 * i + 1] * weight, bl = colors[3 * i + 2] * weight;
      const inside = px >= reach && py >= reach && px + reach < width && py + reach < height;
      const centre = (py * width + px) * 4;
      if (inside && !outline && !set.edge) {
        // nearly every point: the whole marker on the canvas, no edge or ring; no bounds to check, offsets ready
        for (let m = 0; m < size; m++) {
          const o = centre + offsets[m];
          pixels[o] = r + pixels[o] * keep;
          pixels[o + 1] = g + pixels[o + 1] * keep;
          pixels[o + 2] = bl + pixels[o + 2] * keep;
          pixels[o + 3] = weight + pixels[o + 3] * keep;
        }
        continue;
      }
      const mask = outline ? ringed : plain;
      for (let m = 0; m < mask.dx.length; m++) {
        const x = px + mask.dx[m], y = py + mask.dy[m];
        if (x < 0 || y < 0 || x >= width || y >= height) continue;
        const o = (y * width + x) * 4, part = mask.part[m];
        if (part > RIM || (part === RIM && set.edge)) {
          const [mr, mg, mb] = marks[part === RIM ? 0 : part - 1];
          pixels[o] = mr;
          pixels[o + 1] = mg;
          pixels[o + 2] = mb;
          pixels[o + 3] = 1;
          continue;
        }
        pixels[o] = r + pixels[o] * keep;
        pixels[o + 1] = g + pixels[o + 1] * keep;
        pixels[o + 2] = bl + pixels[o + 2] * keep;
        pixels[o + 3] = weight + pixels[o + 3] * keep;
      }
    }
  }
  // premultiplied → the canvas's straight RGBA bytes (little-endian: A B G R in a 32-bit word)
  for (let p = 0, o = 0; p < buffer32.length; p++, o += 4) {
    const alpha = pixels[o + 3];
    if (alpha <= 0) {
      buffer32[p] = 0;
      continue;
    }
    const scale = 255 / alpha;
    buffer32[p] = ((alpha * 255) << 24) | ((pixels[o + 2] * scale) << 16) | ((pixels[o + 1] * scale) << 8) |
                  (pixels[o] * scale);
  }
  context2d.putImageData(image, 0, 0);
}

// Each point's colour as r, g, b in 0..1, kept until the colours change.
function colorTable(set) {
  if (set.colorTable && set.colorTable.tone === set.tone) return set.colorTable.rgb;
  const n = set.n, rgb = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const [r, g, b] = rgba(fillOf(set, i));
    rgb[3 * i] = r / 255;
    rgb[3 * i + 1] = g / 255;
    rgb[3 * i + 2] = b / 255;
  }
  set.colorTable = {tone: set.tone, rgb};
  return rgb;
}

function fillOf(set, i) {
  const tone = set.tone[i];
  if (tone < 0) return set.missing;
  return set.palette[Math.floor(tone * set.palette.length)];
}
