// The live page (`layerlapse watch`): a page that stays open while a run records, and shows each snapshot as the run
// commits it, without a reload. It asks the watch server for the run's state every `poll` ms (api/state: the
// banner's words, and the version of the page the server has made for the run's newest state: the server starts
// making it when it sees the run change); on a new version it fetches the page's parts (api/page: the same Bokeh
// document and payload the offline report holds) and draws them with the same code, in a hidden layer over the shown page; once drawn, it carries the view over (the epoch, unless the
// slider was on the newest snapshot, when it follows the newest; the layer, the colouring, the toggles, the
// selection, the pinned point), shows the new page and disposes of the old one.
// Outside the report's closures: it runs once, with the shell page (report/live.py), and never in report.html.

function layerlapseLive(config) {
  "use strict";
  const banner = document.getElementById("layerlapse-banner");
  const live = {version: null, loads: 0, status: null, busy: false, errors: [], timings: [],
                banner: () => banner.textContent,
                snapshots: () => (window.layerlapse && window.layerlapse.ready ? window.layerlapse.snapshots() : 0)};
  window.layerlapseLive = live;
  let shown = null;  // {root, views, doc, home}: the page on screen, and its map's own extent

  const address = (path) => (config.token ? `${path}?token=${encodeURIComponent(config.token)}` : path);

  async function fetchJson(path) {
    const response = await fetch(address(path), {cache: "no-store"});
    if (!response.ok) throw new Error(`${path} answered ${response.status} ${response.statusText}`);
    return response.json();
  }

  // Only a change touches the page: a text set again, even the same, has the browser lay out and paint anew (a
  // fifth of a core at four looks a second, in software rendering).
  function showBanner(words, kind) {
    if (banner.textContent !== words) banner.textContent = words;  // text, never markup: it holds the run's path
    if (banner.dataset.kind !== kind) banner.dataset.kind = kind;
  }

  async function poll() {
    try {
      const state = await fetchJson("api/state");
      live.status = state;
      showBanner(state.banner, state.status);
      // drawn beside the polling: the banner keeps its time while a page is made and drawn
      if (state.page !== null && state.page !== live.version && !live.busy) load();
    } catch (error) {
      showBanner(`the watch server does not answer (${error.message}): is \`layerlapse watch\` still running?`,
                 "unreachable");
    }
    setTimeout(poll, config.poll);
  }

  async function load() {
    live.busy = true;
    const timing = {asked: performance.now()};  // the stages of this load, in ms since the page opened
    try {
      const parts = await fetchJson("api/page");
      timing.fetched = performance.now();
      if (parts.version === live.version) return;
      const carried = carry();
      // the old page read its payload and its atlases' texts when it started: the new payload's tags replace the
      // old ones before the new page starts
      document.getElementById("layerlapse-data").innerHTML = parts.data;
      const root = document.createElement("div");
      root.id = `layerlapse-root-${live.loads + 1}`;
      root.className = "layerlapse-root";
      if (shown) Object.assign(root.style, {position: "absolute", top: "0", left: "0", visibility: "hidden"});
      document.getElementById("layerlapse-roots").appendChild(root);
      const before = window.layerlapse;
      const documentsBefore = new Set(Bokeh.documents);
      const views = await Bokeh.embed.embed_item(parts.item, root.id);
      timing.embedded = performance.now();
      const doc = Bokeh.documents.find((candidate) => !documentsBefore.has(candidate)) || null;
      await until(() => window.layerlapse && window.layerlapse !== before && window.layerlapse.ready);
      dispose(shown, before);
      Object.assign(root.style, {position: "", top: "", left: "", visibility: ""});
      shown = {root, views, doc, home: null};
      restore(carried, doc);
      shown.home = ranges(doc);  // the map's own extent: a zoom away from it is the user's, and is kept
      if (carried && carried.zoom) zoomTo(carried.zoom, doc);
      live.version = parts.version;
      live.loads++;
      timing.shown = performance.now();
      live.timings.push(timing);
    } catch (error) {
      live.errors.push(String(error));
      console.warn(`layerlapse: the newest snapshot could not be shown: ${error}`);
    } finally {
      live.busy = false;
    }
  }

  function until(condition) {
    return new Promise((resolve) => {
      const check = () => (condition() ? resolve() : setTimeout(check, 20));
      check();
    });
  }

  // The view to keep: null before the first page.
  function carry() {
    const hook = window.layerlapse;
    if (!shown || !hook || !hook.ready) return null;
    const state = hook.state();
    const model = (name) => shown.doc && shown.doc.get_model_by_name(name);
    const toggles = {};
    for (const name of ["layerlapse-show-test", "layerlapse-misclassified"]) {
      const toggle = model(name);
      if (toggle) toggles[name] = toggle.active;
    }
    const zoom = ranges(shown.doc);
    const zoomed = zoom && shown.home && zoom.some((value, k) => Math.abs(value - shown.home[k]) > 1e-9);
    return {epoch: state.epoch, newest: state.epoch === hook.snapshots() - 1, layer: state.layer,
            compare: state.compare, colorBy: state.colorBy, selected: state.selected, region: state.region,
            total: state.total, pinned: state.pinned, toggles, zoom: zoomed ? zoom : null};
  }

  // The shown map's x and y extent, [x0, x1, y0, y1], or null.
  function ranges(doc) {
    const plot = doc && doc.get_model_by_name("layerlapse-map");
    return plot ? [plot.x_range.start, plot.x_range.end, plot.y_range.start, plot.y_range.end] : null;
  }

  function restore(carried, doc) {
    const hook = window.layerlapse;
    if (carried === null) return;
    if (carried.layer !== hook.state().layer) hook.setLayer(carried.layer);
    if (carried.compare) hook.setCompare(carried.compare);
    if (carried.colorBy !== "class" && hook.state().colorOptions.includes(carried.colorBy)) {
      hook.setColorBy(carried.colorBy);
    }
    for (const [name, active] of Object.entries(carried.toggles)) {
      const toggle = doc && doc.get_model_by_name(name);
      if (toggle && !toggle.disabled) toggle.active = active;
    }
    // a point is its index among the page's points: the same point only while the page shows the same points
    if (carried.total === hook.state().total) {
      if (carried.region !== "none") hook.selectRegion(carried.region);
      else if (carried.selected) hook.select(carried.selected);
      if (carried.pinned) hook.pin(carried.pinned.i, carried.pinned.set);
    }
    hook.setEpoch(carried.newest ? hook.snapshots() - 1 : Math.min(carried.epoch, hook.snapshots() - 1));
  }

  function zoomTo(zoom, doc) {
    const plot = doc && doc.get_model_by_name("layerlapse-map");
    if (!plot) return;
    plot.x_range.setv({start: zoom[0], end: zoom[1]});
    plot.y_range.setv({start: zoom[2], end: zoom[3]});
  }

  function dispose(page, hook) {
    if (!page) return;
    if (hook && typeof hook.dispose === "function") hook.dispose();
    page.views.clear();
    page.root.remove();
    const k = Bokeh.documents.indexOf(page.doc);
    if (k >= 0) Bokeh.documents.splice(k, 1);
  }

  poll();
}
