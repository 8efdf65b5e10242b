// The notebook widget's behaviour: the controls, the mouse on the map (hover, click to pin a trail, drag a box or a
// lasso), the model's changes from the kernel, and the hook for tests and benchmarks (the widget element's
// `layerlapse`: ready, timings, state(), setFrame(k), paintedPixels(), clientPosition(i), selectPolygon(points)).

function wireView(view) {
  const {model, dom, points, state, hook, load, paint, paintNow, setLayer, recolor, relook, toData, array} = view;

  function setFrame(k) {
    const frames = state.data.epochs.length;
    state.frame = Math.max(0, Math.min(frames - 1, k));
    state.tween = null;
    if (model.get("frame") !== state.frame) {
      model.set("frame", state.frame);
      model.save_changes();
    }
    paint();
  }

  // The selection: the page's point indices, sorted, to the kernel (null or empty: none)
  function select(indices) {
    state.selected = indices && indices.length ? Array.from(indices).sort((a, b) => a - b) : null;
    relook();
    model.set("selected_points", state.selected || []);
    model.save_changes();
    dom.selection.textContent = state.selected ? `${state.selected.length.toLocaleString()} selected ` +
      "(read them with .selected or .selection())" : "";
    paint();
  }

  // Points inside a polygon of screen positions (CSS pixels of the map), at the shown snapshot.
  function selectPolygon(polygon) {
    const data = polygon.map(([sx, sy]) => toData(sx, sy));
    select(points.within("probe", state.frame, (x, y) => insidePolygon(data, x, y)));
    return state.selected || [];
  }

  function togglePlay() {
    if (state.playing) {
      cancelAnimationFrame(state.playing);
      state.playing = null;
      state.tween = null;
      dom.play.textContent = "▶";
      paint();
      return;
    }
    const frames = state.data.epochs.length;
    if (frames < 2) return;
    if (state.frame >= frames - 1) state.frame = 0;
    dom.play.textContent = "❚❚";
    let started = performance.now(), from = state.frame;
    const step = (now) => {
      const t = Math.min(1, (now - started) / STEP_MS);
      state.frame = from + 1;
      state.tween = {from, t};
      paintNow();
      if (t >= 1) {
        state.tween = null;
        from = state.frame;
        started = now;
        if (from >= state.data.epochs.length - 1) {
          state.playing = null;
          dom.play.textContent = "▶";
          setFrame(from);
          return;
        }
      }
      state.playing = requestAnimationFrame(step);
    };
    state.playing = requestAnimationFrame(step);
  }

  dom.slider.addEventListener("input", () => setFrame(Number(dom.slider.value)));
  dom.play.addEventListener("click", togglePlay);
  dom.layer.addEventListener("change", () => {
    setLayer(state.data.layers.findIndex((layer) => layer.name === dom.layer.value));
    paint();
  });
  dom.colorBy.addEventListener("change", () => {
    state.colorBy = dom.colorBy.value;
    recolor();
    paint();
  });
  dom.showTest.addEventListener("change", () => {
    state.showTest = dom.showTest.checked;
    relook();
    paint();
  });
  dom.clear.addEventListener("click", () => {
    state.pinned = null;
    select(null);
  });

  // ---- the mouse on the map -------------------------------------------------------------------------------------
  const local = (event) => {
    const box = dom.overlay.getBoundingClientRect();
    return [(event.clientX - box.left) * MAP_PX / box.width, (event.clientY - box.top) * MAP_PX / box.height];
  };
  dom.overlay.addEventListener("pointerdown", (event) => {
    if (!state.data) return;
    dom.overlay.setPointerCapture(event.pointerId);
    state.drag = {tool: dom.tool.value, path: [local(event)]};
    dom.tip.style.display = "none";
  });
  dom.overlay.addEventListener("pointermove", (event) => {
    if (!state.data) return;
    if (state.drag) {
      state.drag.path.push(local(event));
      paint();
      return;
    }
    hover(local(event));
  });
  dom.overlay.addEventListener("pointerup", (event) => {
    if (!state.drag) return;
    const drag = state.drag;
    drag.path.push(local(event));
    state.drag = null;
    const [a, b] = [drag.path[0], drag.path[drag.path.length - 1]];
    const moved = drag.path.some(([x, y]) => Math.hypot(x - a[0], y - a[1]) > 4);
    if (!moved) {  // a click: pin the point under the mouse (its trail), or unpin
      const found = points.nearest("probe", b[0], b[1], state.frame, 3);
      state.pinned = found ? found.i : null;
      paint();
      return;
    }
    selectPolygon(drag.tool === "box" ? boxPath(drag.path) : drag.path);
  });
  dom.overlay.addEventListener("pointerleave", () => { dom.tip.style.display = "none"; });

  function hover([sx, sy]) {
    const found = points.nearest("probe", sx, sy, state.frame, 3);
    if (!found) {
      dom.tip.style.display = "none";
      return;
    }
    const data = state.data, i = found.i;
    const rows = array(data.probe.rows), labels = array(data.probe.labels);
    const predicted = array(data.probe.predicted), confidence = array(data.probe.confidence);
    const words = [`#${rows ? rows[i] : i}`, data.classNames[labels[i]]];
    if (predicted) {
      const at = state.frame * data.probe.n + i;
      words.push(`→ ${data.classNames[predicted[at]]} (${(confidence[at] / 255).toFixed(2)})`);
    }
    dom.tip.replaceChildren();
    const url = state.thumbnails && state.thumbnails.url(i);
    if (url) element("img", {src: url, width: String(state.thumbnails.width),
                             height: String(state.thumbnails.height), class: "layerlapse-thumbnail",
                             style: {imageRendering: "pixelated", display: "block"}}, dom.tip);
    else if (state.thumbnails) state.thumbnails.load([i]).then(() => hover([sx, sy]));
    const text = state.texts && typeof state.texts[i] === "string" ? state.texts[i] : null;
    if (text !== null) {  // as the report's hover shows it: text, never markup, cut to 4 lines
      element("div", {class: "layerlapse-tooltip-text", text,
                      style: {whiteSpace: "pre-wrap", overflowWrap: "anywhere", width: "max-content",
                              maxWidth: "300px", display: "-webkit-box", webkitBoxOrient: "vertical",
                              webkitLineClamp: "4", overflow: "hidden", marginBottom: "2px"}}, dom.tip);
    }
    element("div", {text: words.join(" ")}, dom.tip);
    dom.tip.style.display = "block";
    const width = dom.tip.offsetWidth || 120, height = dom.tip.offsetHeight || 130;
    Object.assign(dom.tip.style, {left: `${Math.max(0, Math.min(sx + 12, MAP_PX - width))}px`,
                                  top: `${Math.max(0, Math.min(sy + 12, MAP_PX - height))}px`});
  }

  // ---- the kernel's changes ---------------------------------------------------------------------------------------
  const reload = () => { load().catch((error) => { dom.caption.textContent = `layerlapse: ${error}`; }); };
  const listeners = {
    "change:arrays": reload,
    "change:payload": reload,
    "change:frame": () => { if (model.get("frame") !== state.frame && state.data) setFrame(model.get("frame")); },
    "change:layer": () => {
      const index = state.data ? state.data.layers.findIndex((layer) => layer.name === model.get("layer")) : -1;
      if (index >= 0 && index !== state.layer) {
        setLayer(index);
        paint();
      }
    },
    "change:selected_points": () => {
      const wanted = model.get("selected_points") || [];
      if (wanted.join() !== (state.selected || []).join()) select(wanted);
    },
  };
  for (const [name, listener] of Object.entries(listeners)) model.on(name, listener);

  // ---- the hook -------------------------------------------------------------------------------------------------
  Object.assign(hook, {
    state: () => ({frame: state.frame, frames: state.data ? state.data.epochs.length : 0,
                   layer: state.data ? state.data.layers[state.layer].name : null,
                   total: state.data ? state.data.probe.n : 0, selected: state.selected, pinned: state.pinned,
                   colorBy: state.colorBy, renderer: points.renderer, paintedFrame: state.paintedFrame,
                   testShown: state.showTest && points.sets.has("test") && points.sets.get("test").visible,
                   playing: state.playing !== null}),
    setFrame,
    select,
    selectPolygon,
    // the map painted now: how many of its canvas's pixels hold a point (drawn again here, in the same task)
    paintedPixels: () => {
      paintNow();
      return points.paintedPixels();
    },
    // point i's place in the window (CSS pixels), or null where the shown snapshot does not draw it
    clientPosition: (i) => {
      const xy = view.position("probe", i, state.frame);
      if (!xy) return null;
      const [sx, sy] = view.toScreen(xy);
      const box = dom.overlay.getBoundingClientRect();
      return {x: box.left + sx * box.width / MAP_PX, y: box.top + sy * box.height / MAP_PX};
    },
    mapBox: () => {
      const box = dom.overlay.getBoundingClientRect();
      return {left: box.left, top: box.top, width: box.width, height: box.height};
    },
  });
  reload();
  return () => {
    if (state.playing) cancelAnimationFrame(state.playing);
    for (const [name, listener] of Object.entries(listeners)) model.off(name, listener);
  };
}

export default {
  render({model, el}) {
    return makeLapseView(model, el);
  },
};
