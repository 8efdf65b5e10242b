// Looks: the class colours the reader chose (tab10, the frames', or a colour-blind-safe ten), and the page's light or
// dark scheme, which follows the system's (prefers-color-scheme). The page's own elements and Bokeh's widgets take
// the dark scheme from CSS (style.py); what Bokeh draws on canvas (plots' backgrounds, text, axes, legends, marks)
// is coloured here, every light colour the page was built with swapped for its dark counterpart and back.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

function setPalette(name) {
  const colors = data.palettes[name];
  if (!colors) {
    if (models.palette.value !== state.palette) models.palette.value = state.palette;
    return;
  }
  if (models.palette.value !== name) models.palette.value = name;
  if (name === state.palette) return;
  state.palette = name;
  classPalette.splice(0, classPalette.length, ...colors);
  models.classRenderers.forEach((renderer, k) => renderer.glyph.setv({fill_color: colors[k], line_color: colors[k]}));
  if (state.colorBy === "class") models.colorMapper.setv({palette: classPalette.slice()});
  views.forEach((view) => {
    view.colored = null;
    if (view.madePoints && view.points.sets.has("test")) view.points.setColors("test", classColors(sets.test.labels));
  });
  if (dataMapView) dataMapView.colored = undefined;
  drawPoints();
  drawDataMap();
  noteView();
}

// Light colours as the page is built, each with its dark counterpart (style.py's DARK_SWAPS), and the page's own dark
const DARK_SWAPS = data.dark.swaps;
const DARK_PAGE = data.dark.page;
const darkScheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
const lightColors = new Map();  // model → {property: its light value}, for the way back

function applyScheme() {
  const dark = Boolean(darkScheme && darkScheme.matches);
  if (dark === state.dark) return;
  state.dark = dark;
  const document_ = views[0].plot.document;
  if (!document_) return;
  for (const model of document_.all_models) {
    if (!model.properties) continue;
    const kept = lightColors.get(model) || {};
    const changes = {};
    for (const name of Object.keys(model.properties)) {
      if (!name.endsWith("_color")) continue;
      if (!dark) {
        if (name in kept) changes[name] = kept[name];
        continue;
      }
      const value = model[name];
      const light = typeof value === "string" ? value
        : value && typeof value === "object" && typeof value.value === "string" ? value.value : null;
      // a plot's border is the page around its frame: the page's own dark, not a panel's
      const swapped = light === null ? undefined : name === "border_fill_color" && DARK_SWAPS[light.toLowerCase()]
        ? DARK_PAGE : DARK_SWAPS[light.toLowerCase()];
      if (swapped === undefined) continue;
      kept[name] = value;
      changes[name] = typeof value === "string" ? swapped : {value: swapped};
    }
    if (Object.keys(changes).length) model.setv(changes);
    if (dark && Object.keys(kept).length) lightColors.set(model, kept);
  }
  shadeConfusion(dark);
  edgeTestPoints(dark);
  Object.assign(tooltip.style, dark ? data.dark.tooltip
                                    : {background: "white", color: "", borderColor: "#888"});
  requestPaint();
}

// The test points' diamonds: a dark edge on a light page, a light one on a dark page (the maps' sets now, and the
// payload's mark, which a layer's sets are made with later).
const LIGHT_TEST_EDGE = data.marks.testEdge;
function edgeTestPoints(dark) {
  data.marks.testEdge = dark ? DARK_SWAPS["#000000"] : LIGHT_TEST_EDGE;
  for (const view of views) {
    if (view.madePoints && view.points.sets.has("test")) view.points.sets.get("test").edge = data.marks.testEdge;
  }
}

// The confusion matrix's cells, shaded by row share: white to dark blue on a light page; on a dark page, dark blue to
// light blue, so that an empty cell is dark as the page is and the diagonal does not glare.
let lightShade = null;
function shadeConfusion(dark) {
  const mapper = views[0].plot.document && views[0].plot.document.get_model_by_name("layerlapse-confusion-shade");
  if (!mapper) return;
  if (lightShade === null) lightShade = mapper.palette.slice();
  mapper.palette = dark ? lightShade.slice().reverse().slice(0, Math.round(lightShade.length * 0.75))
                        : lightShade.slice();
  drawConfusion();
}

if (darkScheme) listen(darkScheme, "change", applyScheme);
