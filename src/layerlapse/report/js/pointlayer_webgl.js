// The point layer's WebGL drawing: the shaders, buffers, the palette texture, and a draw.
// A part of the point layer's closure, makePointLayer(options): script.py joins the parts in its fixed order
// inside that function, so they share its canvas, context, sets and view by scope.

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
