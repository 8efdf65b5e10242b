// A scatter of many points for layerlapse's report: a canvas laid under a Bokeh plot's frame (the plot itself draws
// no points, only axes, the legend, the pinned point's trail and the tools' overlays, on a transparent background).
//
// Why not Bokeh's own scatter: each slider step rewrote its data source from JavaScript and Bokeh then mapped,
// uploaded and repainted every point (about a second a step at 60,000 points in Chromium, 226 ms a frame at 10,000
// with software WebGL; bench/report_speed.py). Here every frame's positions are uploaded to the GPU once, as 16-bit
// codes within the layer's limits, and a step only chooses which two frames the shader blends between: playing glides
// the points on the GPU (the blend factor is a uniform), and nothing per point is computed in JavaScript unless the
// points' looks change (a selection, the misclassified ringed at a new epoch, a class hidden, a new colouring).
//
// Without WebGL, and with a WebGL that is software (SwiftShader in a VM without a GPU, where it is slower), the CPU
// draws the same points in the same order, with the same colours and alphas, into a pixel buffer put on a 2-D
// canvas (`draw2d`); playing then blends the two frames' positions in that loop.

function makePointLayer(options) {
  "use strict";
  const webgl = !options || options.webgl !== false;
  const NOT_DRAWN = 65535;
  const COORD_STEPS = 65534;
  // An outlined point (a misclassified one) gets a ring around its marker, outside it so that the marker keeps its
  // colour: a white halo, then the ring, in CSS pixels; a small marker with a one-pixel outline was hard to see.
  const HALO_CSS_PX = 1, RING_CSS_PX = 2;
  const sets = new Map();  // name -> a set of points (see addSet)
  const view = {x0: 0, x1: 1, y0: 0, y1: 1, width: 1, height: 1, ratio: 1};
  let canvas = makeCanvas();
  // no depth, stencil or kept buffer: in software WebGL each costs a pass over the whole canvas every frame
  let gl = webgl ? (canvas.getContext("webgl", {premultipliedAlpha: true, antialias: false, depth: false,
                                                 stencil: false, preserveDrawingBuffer: false}) || null) : null;
  const browserWebgl = gl !== null;
  // Software WebGL (SwiftShader, llvmpipe: a VM or a machine without a GPU) rasterises each point as a primitive,
  // about 2 µs a point on a busy 2-core CPU: 60,000 points took ~110 ms a frame, where this file's own CPU splatting
  // (below) takes a fraction of that (bench/report_speed.py). There the splatting draws instead, unless the page's
  // address asks for WebGL (#renderer=webgl); the shaders are then never compiled and the context is given back.
  if (gl && softwareWebgl(gl) && !/renderer=webgl/.test(window.location.hash)) {
    giveBack(gl);
    gl = null;
    canvas = makeCanvas();
  }
  let program = null;
  if (gl) {
    try {
      program = makeProgram(gl);
    } catch (error) {  // a WebGL that cannot run these shaders: the CPU draws instead
      console.warn(`layerlapse: drawing the points without WebGL: ${error.message}`);
      giveBack(gl);
      gl = null;
      canvas = makeCanvas();
    }
  }
  const context2d = gl ? null : canvas.getContext("2d");
  const renderer = gl ? "webgl" : "cpu";

  // A context not drawn with is lost at once: browsers keep only some (Chromium 16) and drop the oldest
  function giveBack(context) {
    const lose = context.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();
  }

  function softwareWebgl(context) {
    const info = context.getExtension("WEBGL_debug_renderer_info");
    const name = info ? String(context.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
    return /swiftshader|llvmpipe|softpipe|software/i.test(name);
  }

  function makeCanvas() {
    const made = document.createElement("canvas");
    made.className = "layerlapse-points-layer";
    Object.assign(made.style, {position: "absolute", pointerEvents: "none"});
    return made;
  }
  const indexType = gl && gl.getExtension("OES_element_index_uint") ? "uint32" : "uint16";

  // ---- WebGL -----------------------------------------------------------------------------------------------------

  // Each point: its codes in the frame blended from (aFrom) and to (aTo), its colour's place in the palette (aTone:
  // 0..1, or -1 for the missing colour), and its look (aLook: alpha, outline, both 0..1). The blend, the map's
  // limits, the view and the marker are uniforms. An outlined point's sprite is larger by its ring (uRingPx a side).
  function makeProgram(gl) {
    const vertex = `
      attribute vec2 aFrom; attribute vec2 aTo; attribute float aTone; attribute vec2 aLook;
      uniform float uBlend; uniform vec4 uLimits; uniform vec4 uView; uniform mediump float uSize;
      uniform float uRingPx;
      varying float vTone; varying vec2 vLook; varying float vSpan;
      void main() {
        vTone = aTone; vLook = aLook;
        bool fromDrawn = aFrom.x < 0.99999, toDrawn = aTo.x < 0.99999;
        if (!toDrawn || aLook.x <= 0.0) { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); gl_PointSize = 0.0; return; }
        vec2 code = fromDrawn ? mix(aFrom, aTo, uBlend) : aTo;
        vec2 scaled = code * (65535.0 / 65534.0);
        vec2 data = vec2(uLimits.x + scaled.x * (uLimits.y - uLimits.x), uLimits.z + scaled.y * (uLimits.w - uLimits.z));
        vec2 clip = vec2((data.x - uView.x) / (uView.y - uView.x), (data.y - uView.z) / (uView.w - uView.z)) * 2.0 - 1.0;
        gl_Position = vec4(clip, 0.0, 1.0);
        vSpan = aLook.y > 0.0 ? uSize + 2.0 * uRingPx : uSize;
        gl_PointSize = vSpan;
      }`;
    // a circle or a diamond filled from the palette, with an edge of uEdge where uEdgeOn says; an outlined point
    // ringed outside its marker (within the circle through the marker's tips): uHalo, then uRing
    const fragment = `
      precision mediump float;
      uniform sampler2D uPalette; uniform vec4 uMissing; uniform float uSize; uniform float uDiamond;
      uniform float uLinePx; uniform float uEdgeOn; uniform vec3 uEdge; uniform vec3 uRing; uniform vec3 uHalo;
      uniform float uHaloPx;
      varying float vTone; varying vec2 vLook; varying float vSpan;
      void main() {
        vec2 p = (gl_PointCoord * 2.0 - 1.0) * (vSpan / uSize);  // in marker radii: the marker's edge at 1
        float px = 2.0 / uSize;  // one device pixel in these units
        float round = length(p);
        float r = uDiamond > 0.5 ? abs(p.x) + abs(p.y) : round;
        vec3 fill; float alpha;
        if (r <= 1.0) {
          fill = vTone < 0.0 ? uMissing.rgb : texture2D(uPalette, vec2(vTone, 0.5)).rgb;
          alpha = vLook.x;
          if (uEdgeOn > 0.5 && r > 1.0 - uLinePx * px) { fill = uEdge; alpha = 1.0; }
          alpha *= clamp((1.0 - r) / px, 0.0, 1.0);  // a pixel of antialiasing at the rim
        } else {
          float outer = vSpan / uSize;
          if (vLook.y <= 0.0 || round <= 1.0 || round > outer) discard;
          fill = round <= 1.0 + uHaloPx * px ? uHalo : uRing;
          alpha = clamp((outer - round) / px, 0.0, 1.0);
        }
        gl_FragColor = vec4(fill * alpha, alpha);
      }`;
    const compiled = gl.createProgram();
    for (const [type, source] of [[gl.VERTEX_SHADER, vertex], [gl.FRAGMENT_SHADER, fragment]]) {
      const shader = gl.createShader(type);
      gl.shaderSource(shader, source);
      gl.compileShader(shader);
      if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
      gl.attachShader(compiled, shader);
    }
    gl.linkProgram(compiled);
    if (!gl.getProgramParameter(compiled, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(compiled));
    const where = {};
    for (const name of ["aFrom", "aTo", "aTone", "aLook"]) where[name] = gl.getAttribLocation(compiled, name);
    for (const name of ["uBlend", "uLimits", "uView", "uSize", "uPalette", "uMissing", "uDiamond", "uLinePx",
                        "uEdgeOn", "uEdge", "uRing", "uHalo", "uRingPx", "uHaloPx"]) {
      where[name] = gl.getUniformLocation(compiled, name);
    }
    return {compiled, where};
  }

  function buffer(target, data) {
    const made = gl.createBuffer();
    gl.bindBuffer(target, made);
    gl.bufferData(target, data, gl.STATIC_DRAW);
    return made;
  }

  function paletteTexture(colors) {
    const bytes = new Uint8Array(colors.length * 4);
    colors.forEach((color, k) => bytes.set(rgba(color), k * 4));
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, colors.length, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE, bytes);
    for (const [name, value] of [[gl.TEXTURE_MIN_FILTER, gl.NEAREST], [gl.TEXTURE_MAG_FILTER, gl.NEAREST],
                                 [gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE], [gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE]]) {
      gl.texParameteri(gl.TEXTURE_2D, name, value);
    }
    return texture;
  }

  // ---- colours -----------------------------------------------------------------------------------------------------

  const parsed = new Map();
  function rgba(color) {
    if (!parsed.has(color)) {
      const probe = document.createElement("canvas").getContext("2d");
      probe.fillStyle = color;
      const hex = probe.fillStyle;  // the browser's own parse: "#rrggbb" (or rgba() for translucent colours)
      const value = hex.startsWith("#") ? [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16))
                                        : hex.match(/[\d.]+/g).slice(0, 3).map(Number);
      parsed.set(color, [...value, 255]);
    }
    return parsed.get(color);
  }

  // Tone: where a value falls in the palette, as Bokeh's LinearColorMapper places it (outside low..high: the end
  // colours), or -1 for a missing value (NaN).
  function tones(values, low, high) {
    const out = new Float32Array(values.length);
    const span = high - low;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      out[i] = Number.isNaN(v) ? -1 : Math.min(Math.max((v - low) / span, 0), 0.999999);
    }
    return out;
  }

  // ---- the sets of points ----------------------------------------------------------------------------------------

  // A set: n points, their positions per frame (`frames(k)` gives frame k's Uint16Array of (x, y) codes within
  // `limits`), and how each is drawn: marker `size` in CSS pixels, `shape` "circle" or "diamond", an `edge` colour
  // around every marker (or null), and the `ring` and `halo` colours an outlined point is ringed with.
  function addSet(name, {n, frameCount, frames, limits, size, shape = "circle", edge = null, ring = "#ff0000",
                         halo = "#ffffff"}) {
    const set = {name, n, frameCount, frames, limits, size, diamond: shape === "diamond", edge, ring, halo,
                 visible: true, tone: null, look: null, order: null,
                 gpu: gl ? {positions: new Array(frameCount).fill(null)} : null, palette: null, missing: "#bbbbbb"};
    sets.set(name, set);
    return set;
  }

  function framePositions(set, k) {
    if (!gl) return set.frames(k);
    if (set.gpu.positions[k] === null) set.gpu.positions[k] = buffer(gl.ARRAY_BUFFER, set.frames(k));
    return set.gpu.positions[k];
  }

  // Colours: per point a value, mapped over low..high onto the palette; missing values (NaN) get `missing`.
  function setColors(name, {values, low, high, palette, missing = "#bbbbbb"}) {
    const set = sets.get(name);
    set.tone = tones(values, low, high);
    set.palette = palette.slice();
    set.paletteRgba = set.palette.map(rgba);
    set.missing = missing;
    if (gl) {
      if (set.gpu.tone) gl.deleteBuffer(set.gpu.tone);
      if (set.gpu.palette) gl.deleteTexture(set.gpu.palette);
      set.gpu.tone = buffer(gl.ARRAY_BUFFER, set.tone);
      set.gpu.palette = paletteTexture(set.palette);
    }
  }

  // Looks: per point an alpha and an outline (bytes, 0..255; alpha 0 hides it), and the order to draw them in
  // (later on top; points left out are not drawn), or null for every point in its own order.
  function setLooks(name, {alpha, outline, order}) {
    const set = sets.get(name);
    const look = new Uint8Array(set.n * 2);
    for (let i = 0; i < set.n; i++) {
      look[2 * i] = alpha[i];
      look[2 * i + 1] = outline[i];
    }
    set.look = look;
    set.alpha = alpha;
    set.outline = outline;
    set.order = order;
    if (gl) {
      if (set.gpu.look) gl.deleteBuffer(set.gpu.look);
      if (set.gpu.order) gl.deleteBuffer(set.gpu.order);
      set.gpu.look = buffer(gl.ARRAY_BUFFER, look);
      set.gpu.order = order === null ? null : buffer(gl.ELEMENT_ARRAY_BUFFER, indexType === "uint32"
        ? Uint32Array.from(order) : Uint16Array.from(order));
      set.gpu.count = order === null ? set.n : order.length;
    }
  }

  function setVisible(name, visible) {
    sets.get(name).visible = visible;
  }

  // ---- the view ------------------------------------------------------------------------------------------------

  // The frame's place (CSS pixels, in the element the canvas lies in) and the data ranges it shows.
  function place(left, top, width, height, ranges) {
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(width * ratio)), h = Math.max(1, Math.round(height * ratio));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    Object.assign(canvas.style, {left: `${left}px`, top: `${top}px`, width: `${width}px`, height: `${height}px`});
    Object.assign(view, ranges, {width, height, ratio});
  }

  // Draw every visible set blended between frames `from` and `to` (t: 0 = from, 1 = to), in the order added.
  function draw(from, to, t) {
    if (gl) drawGl(from, to, t);
    else draw2d(from, to, t);
  }

  function drawGl(from, to, t) {
    gl.viewport(0, 0, canvas.width, canvas.height);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);  // premultiplied colours, as the page composites the canvas
    const {compiled, where} = program;
    gl.useProgram(compiled);
    gl.uniform4f(where.uView, view.x0, view.x1, view.y0, view.y1);
    for (const set of sets.values()) {
      if (!set.visible || set.look === null || set.tone === null) continue;
      const attribute = (location, gpuBuffer, size, type, normalized) => {
        gl.bindBuffer(gl.ARRAY_BUFFER, gpuBuffer);
        gl.enableVertexAttribArray(location);
        gl.vertexAttribPointer(location, size, type, normalized, 0, 0);
      };
      attribute(where.aFrom, framePositions(set, from), 2, gl.UNSIGNED_SHORT, true);
      attribute(where.aTo, framePositions(set, to), 2, gl.UNSIGNED_SHORT, true);
      attribute(where.aLook, set.gpu.look, 2, gl.UNSIGNED_BYTE, true);
      attribute(where.aTone, set.gpu.tone, 1, gl.FLOAT, false);
      gl.activeTexture(gl.TEXTURE0);
      gl.bindTexture(gl.TEXTURE_2D, set.gpu.palette);
      gl.uniform1i(where.uPalette, 0);
      gl.uniform1f(where.uBlend, from === to ? 1 : t);
      gl.uniform4f(where.uLimits, ...set.limits);
      gl.uniform1f(where.uSize, set.size * view.ratio);
      gl.uniform1f(where.uDiamond, set.diamond ? 1 : 0);
      gl.uniform1f(where.uLinePx, Math.max(1, Math.round(view.ratio)));
      gl.uniform4f(where.uMissing, ...rgba(set.missing).map((v) => v / 255));
      gl.uniform1f(where.uEdgeOn, set.edge ? 1 : 0);
      const unit = (color) => rgba(color).slice(0, 3).map((v) => v / 255);
      gl.uniform3f(where.uEdge, ...unit(set.edge || "#000000"));
      gl.uniform3f(where.uRing, ...unit(set.ring));
      gl.uniform3f(where.uHalo, ...unit(set.halo));
      const ring = ringPx(view.ratio);
      gl.uniform1f(where.uRingPx, ring.ring);
      gl.uniform1f(where.uHaloPx, ring.halo);
      if (set.gpu.order === null) gl.drawArrays(gl.POINTS, 0, set.n);
      else {
        gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, set.gpu.order);
        gl.drawElements(gl.POINTS, set.gpu.count, indexType === "uint32" ? gl.UNSIGNED_INT : gl.UNSIGNED_SHORT, 0);
      }
    }
  }

  // ---- the CPU's own drawing: each point's pixels blended into a premultiplied buffer, then put on a 2-D canvas ---

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

  // ---- where points are --------------------------------------------------------------------------------------

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

  return {canvas, webgl: browserWebgl, renderer, paintedPixels, addSet, setColors, setLooks, setVisible, place, draw, nearest, within,
          drawnRows, sets};
}
