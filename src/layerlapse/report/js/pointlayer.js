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
//
// The point layer's context: WebGL where the browser gives a hardware one, else a 2-D canvas.
// A part of the point layer's closure, makePointLayer(options): script.py joins the parts in its fixed order
// inside that function, so they share its canvas, context, sets and view by scope.

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
