// Time: what a slider step redraws, the slider, and playing (points glide between frames on the GPU).
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

// What a slider step changes.
function drawFrame() {
  drawPoints();
  drawTrail();
  drawPinned();
  drawFigures();
  schedulePanels();
  state.drawnEpoch = state.epoch;
  noteView();
}

// Everything: after a toggle, a class hidden or shown, a selection or a colour choice.
function redraw() {
  drawFrame();
  drawDataMap();
  drawSelectionList();
  fitFigures();
}

function setEpoch(epoch, {fromPlayer = false} = {}) {
  epoch = Math.max(0, Math.min(lastEpoch, Math.round(Number(epoch))));
  if (!fromPlayer && state.playing && epoch !== state.epoch) stopPlaying();  // the user took the slider
  if (epoch === state.epoch && state.drawnEpoch === epoch && !state.tween) return;
  state.epoch = epoch;
  state.tween = null;
  drawFrame();
  // painted now, not in the next animation frame: Bokeh runs the slider's callback after the frame's callbacks
  // were chosen, so a paint requested here waited a frame more (bench/report_speed.py)
  paintNow();
  if (models.slider.value !== epoch) models.slider.value = epoch;  // its callback comes back here: drawn already
}

function togglePlay() {
  if (state.playing) {
    stopPlaying();
    return;
  }
  state.playing = true;
  models.play.label = "❚❚ pause";
  if (state.epoch >= lastEpoch) setEpoch(0, {fromPlayer: true});
  setTimeout(playNext, PAUSE_MS);
}

function stopPlaying() {
  state.playing = false;
  models.play.label = "▶ play";
  if (state.tween) setEpoch(state.epoch, {fromPlayer: true});
}

function playNext() {
  if (!state.playing) return;
  if (state.epoch >= lastEpoch) {
    stopPlaying();
    return;
  }
  const from = state.epoch, to = from + 1, started = performance.now();
  state.epoch = to;
  state.tween = {from, t: 0};
  const frame = (now) => {
    if (!state.playing || !state.tween) return;
    state.tween.t = Math.min(1, (now - started) / TWEEN_MS);
    if (state.tween.t < 1) {
      paintNow();  // the same two frames' codes, blended further on the GPU: nothing per point in JavaScript
      requestAnimationFrame(frame);
      return;
    }
    state.tween = null;
    state.drawnEpoch = null;
    setEpoch(to, {fromPlayer: true});
    setTimeout(playNext, PAUSE_MS);
  };
  requestAnimationFrame(frame);
}
