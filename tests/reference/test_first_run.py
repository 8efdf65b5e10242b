"""What a run says after its last epoch (issue 25, point 5): which snapshot it is waiting for, that a first run
compiles the map's code, no bar of 0/0, and the report named in the `wrote` line (that last one in test_cli.py).

One small real run on scikit-learn's digits (one epoch, 300 probe images) is shared; the worker that maps alongside
training is stood in for by one that hands over its frames a poll at a time, so every wait is the same wait.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from layerlapse import RunConfig, load_run, map_run
from layerlapse.recipe import mapping, steps
from layerlapse._util.progress import progress_bar
from layerlapse.maps.timeline import Frame
from run_helpers import recorded_and_drawn

MAPPING = ["mapping snapshot 1 of 2 (epoch 0, layer hidden)", "mapping snapshot 2 of 2 (epoch 1, layer hidden)"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("first-run") / "run"
    config = RunConfig(dataset="digits", epochs=1, probe=300, n_neighbors=15)
    recorded_and_drawn(config, out)
    return out


@pytest.fixture
def run_copy(small_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(small_run, copy)
    return copy


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a person's shell is: bars and a library's notes are drawn there."""

    def isatty(self) -> bool:
        return True


class SlowWorker:
    """Stands in for timeline.BackgroundMapper, mapping one layer: its next frame is ready at each look (a call of
    finished_frames) numbered in `ready`, counting one look after each snapshot during training and then the wait's;
    `fails_after` frames, it stops with an error instead."""

    def __init__(self, ready: tuple[int, ...] = (4, 7), *, fails_after: int | None = None) -> None:
        self.submitted: list[int] = []
        self.ready = ready
        self.looks = 0
        self.handed = 0
        self.fails_after = fails_after
        self.error: str | None = None

    def submit(self, epoch: int) -> None:
        self.submitted.append(epoch)

    def finished_frames(self, *, wait: bool = False) -> list[Frame]:
        if wait:
            return [self._frame() for _ in list(self.submitted)] if self.error is None else []
        self.looks += 1
        if self.handed == self.fails_after:
            self.error = "RuntimeError: the map failed\nTraceback ..."
            return []
        return [self._frame()] if self.submitted and self.looks in self.ready else []

    def _frame(self) -> Frame:
        self.handed += 1
        return Frame("hidden", self.submitted.pop(0), np.zeros((300, 2), np.float32))

    def stop(self) -> None:
        pass


def waited(run_copy: Path, monkeypatch: pytest.MonkeyPatch, worker: SlowWorker, *, on_disk: bool | None,
           show_progress: bool = True) -> list[Frame]:
    """Both snapshots submitted as training would, then the wait after the last epoch; returns the frames stored."""
    stored: list[Frame] = []
    monkeypatch.setattr(mapping, "BackgroundMapper", lambda spec: worker)
    monkeypatch.setattr(mapping, "_store_frames", lambda run, frames, target=None, method=None: stored.extend(frames))
    monkeypatch.setattr(mapping, "map_code_on_disk", lambda: on_disk)
    monkeypatch.setattr(mapping, "POLL_SECONDS", 0.0)
    run = load_run(run_copy)
    alongside = mapping.MapAlongside("aligned")
    alongside(run, 0)
    alongside(run, 1)
    alongside.finish(run, show_progress=show_progress)
    return stored


# --- the wait for the maps made alongside training ------------------------------------------------------------------


def test_the_wait_names_each_snapshot_and_that_a_first_run_compiles(run_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    stored = waited(run_copy, monkeypatch, SlowWorker(), on_disk=False)
    assert capsys.readouterr().err.splitlines() == [MAPPING[0], mapping.COMPILING, MAPPING[1]]
    assert [frame.epoch for frame in stored] == [0, 1]


def test_a_cache_that_holds_the_code_or_cannot_be_read_claims_no_compiling(
        run_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for on_disk in (True, None):
        waited(run_copy, monkeypatch, SlowWorker(), on_disk=on_disk)
        assert capsys.readouterr().err.splitlines() == MAPPING


def test_a_frame_that_came_during_training_is_not_waited_for(run_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    stored = waited(run_copy, monkeypatch, SlowWorker(ready=(2, 5)), on_disk=False)  # the first frame: in training
    assert capsys.readouterr().err.splitlines() == [MAPPING[1]]  # and the worker's code is compiled by then
    assert [frame.epoch for frame in stored] == [0, 1]


def test_quiet_waits_say_nothing(run_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    stored = waited(run_copy, monkeypatch, SlowWorker(), on_disk=False, show_progress=False)
    assert capsys.readouterr().err == "" and len(stored) == 2


def test_a_worker_that_fails_ends_the_wait_and_says_so(run_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    stored = waited(run_copy, monkeypatch, SlowWorker(fails_after=1), on_disk=True)
    assert capsys.readouterr().err.splitlines() == [
        *MAPPING, "the mapping worker stopped (RuntimeError: the map failed); mapping the rest here"]
    assert [frame.epoch for frame in stored] == [0]  # map_run maps snapshot 1 in this process


# --- mapping in this process (a stored run, a failed worker, aligned-umap) ------------------------------------------


def unlist(folder: Path, relpath: str) -> None:
    """Take a map out of the run as if it had never been written."""
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"][relpath]
    (folder / relpath).unlink()
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(("on_disk", "method", "said"), [(False, None, True), (True, None, False),
                                                         (False, "pca", False)])
def test_mapping_here_says_when_it_compiles_first(run_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], on_disk: bool,
                                                  method: str | None, said: bool) -> None:
    unlist(run_copy, "maps/hidden/epoch_001.npy")
    monkeypatch.setattr(mapping, "map_code_on_disk", lambda: on_disk)
    map_run(load_run(run_copy), method=method, show_progress=True)
    assert (mapping.COMPILING in capsys.readouterr().err.splitlines()) == said


def test_a_run_with_nothing_to_map_says_nothing_of_compiling(run_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(mapping, "map_code_on_disk", lambda: False)
    map_run(load_run(run_copy), show_progress=True)
    assert capsys.readouterr().err == ""


# --- a Recorder's or a callback's finish ----------------------------------------------------------------------------


@pytest.mark.parametrize("terminal", [True, False])
def test_a_library_finish_speaks_only_to_a_terminal(run_copy: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    if terminal:
        monkeypatch.setattr(sys, "stderr", Terminal())
    run = load_run(run_copy)
    steps.complete_run(run)  # as Recorder.finish calls it
    said = sys.stderr.getvalue() if terminal else capsys.readouterr().err
    if terminal:  # the notes, between the bars rich drew and took away again
        lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", said).splitlines()
        assert lines[0] == "drawing the frames and figures, measuring the layers, writing the report"
        assert lines[-1] == f"wrote {run_copy}/report.html: open it in any browser, offline"
    else:  # a log, a notebook: as quiet as before
        assert said == ""


# --- bars -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "drawn"), [(0, False), (2, True)])
def test_a_bar_is_drawn_only_with_something_to_count(monkeypatch: pytest.MonkeyPatch, total: int,
                                                     drawn: bool) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar("mapping (aligned)", total) as advance:
        advance(total)
    assert ("mapping (aligned)" in terminal.getvalue()) == drawn


def on_a_terminal(*args: str | Path, timeout: float = 120) -> str:
    """Run the command with stdout and stderr on a pseudo-terminal (where bars are drawn); all it wrote."""
    controller, terminal = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "layerlapse", *map(str, args)], stdin=subprocess.DEVNULL,
                               stdout=terminal, stderr=terminal, env={**os.environ, "COLUMNS": "120"})
    os.close(terminal)
    written = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # read as it writes: a full terminal buffer would stop it
        if select.select([controller], [], [], 1.0)[0]:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the command has ended and closed its side
                break
            if not chunk:
                break
            written += chunk
        elif process.poll() is not None:
            break
    process.kill()
    process.wait()
    os.close(controller)
    return written.decode(errors="replace")


def test_render_on_a_terminal_draws_no_bar_of_nothing(run_copy: Path) -> None:
    """A mapped run has no map to make: the bar of 0/0 that `render` (and every run after its last epoch) drew."""
    shown = on_a_terminal("render", run_copy)
    assert "redrew" in shown and "drawing hidden" in shown  # the bars of work there is are drawn
    assert "0/0" not in shown and "mapping (" not in shown
