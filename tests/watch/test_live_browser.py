"""The live page in Chromium while a real run records in another process (a `Recorder` in a user's own loop): opened
before the run's second snapshot, it shows every snapshot as it arrives, without a reload, follows the newest unless
the user moved the slider, keeps the user's view, and its banner ends at complete; no console error, and no request
leaves the loopback server."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from layerlapse.watch.run_state import rest
from layerlapse.watch.server import WatchServer, settings_for

from browser_helpers import browser, playwright  # noqa: F401 - fixtures

EPOCHS = 3
MAP = "Bokeh.documents[0].get_model_by_name('layerlapse-map')"
RECORDING = Path(__file__).with_name("recording.py")


@dataclass
class Live:
    page: Any
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def wait(self, expression: str, timeout_s: float = 60) -> None:
        try:
            self.page.wait_for_function(expression, timeout=timeout_s * 1000, polling=100)
        except Exception as error:  # what the page knew, beside the timeout
            raise AssertionError(f"{expression}: {error}; live: {self.js('JSON.stringify(window.layerlapseLive)')} "
                                 f"banner: {self.js('window.layerlapseLive.banner()')}; errors: {self.errors}"
                                 ) from None


def open_live(browser: Any, url: str) -> Live:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    live = Live(page)
    page.on("console", lambda message: message.type == "error" and live.errors.append(message.text))
    page.on("pageerror", lambda error: live.errors.append(str(error)))
    server = url.split("?")[0]

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            live.blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(url)
    return live


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[tuple[Path, Path, subprocess.Popen]]:
    out, gate = tmp_path / "run", tmp_path / "gate"
    gate.mkdir()
    process = subprocess.Popen([sys.executable, str(RECORDING), str(out), str(gate), str(EPOCHS)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield out, gate, process
    process.kill()
    process.wait()


def test_the_live_page_shows_every_snapshot_as_the_run_commits_it(browser: Any, recording: tuple) -> None:
    out, gate, process = recording
    server = WatchServer(settings_for(out, "127.0.0.1", 0, None, poll_ms=200)).start()
    try:
        live = open_live(browser, server.url)
        live.js("window.unreloaded = true")  # gone if the page ever reloads
        live.wait("window.layerlapseLive.banner().startsWith('training: ')")
        assert live.js("window.layerlapseLive.snapshots()") == 0
        seen = []
        for epoch in range(1, EPOCHS + 2):
            # a snapshot's map is stored when the next snapshot records (the worker hands it over), or at the end
            (gate / (str(epoch) if epoch <= EPOCHS else "finish")).touch()
            live.wait(f"window.layerlapseLive.snapshots() >= {epoch}", timeout_s=90)
            seen.append(live.js("window.layerlapseLive.snapshots()"))
            # the watcher makes a page at most once per rest: a snapshot committed within it comes with the next
            time.sleep(rest(server.watched.making_s))
            assert live.js("window.unreloaded") is True
            if epoch == 2:  # the user moves the slider back and zooms in: the page keeps both from now on
                live.js("window.layerlapse.setEpoch(0)")
                live.js(f"{MAP}.x_range.setv({{start: -1, end: 1}})")
        live.wait("window.layerlapseLive.banner().startsWith('complete')", timeout_s=90)
        live.wait(f"window.layerlapseLive.snapshots() === {EPOCHS + 1}")
        assert live.js("window.layerlapseLive.banner()") == f"complete: {EPOCHS + 1} snapshots"
        assert seen == list(range(1, EPOCHS + 2)), seen  # every snapshot, one by one
        state = live.js("window.layerlapse.state()")
        assert state["epoch"] == 0  # the user's slider stayed where it was put
        assert live.js(f"[{MAP}.x_range.start, {MAP}.x_range.end]") == [-1, 1]  # and the zoom
        assert state["drawn"] == 200 and live.js("window.layerlapse.paintedPixels()") > 0
        assert live.js("window.unreloaded") is True
        assert live.js("window.Bokeh.documents.length") == 1  # the pages it replaced are gone
        assert live.js("document.querySelectorAll('.layerlapse-root').length") == 1
        assert live.errors == [] and live.blocked == []
        assert process.wait(60) == 0, process.stdout.read()
    finally:
        server.stop()


def test_the_slider_follows_the_newest_snapshot_and_two_browsers_watch_one_run(browser: Any, recording: tuple
                                                                               ) -> None:
    out, gate, process = recording
    server = WatchServer(settings_for(out, "127.0.0.1", 0, None, poll_ms=200)).start()
    try:
        pages = [open_live(browser, server.url) for _ in range(2)]
        for epoch in range(1, EPOCHS + 1):
            (gate / str(epoch)).touch()
        (gate / "finish").touch()
        for live in pages:
            live.wait("window.layerlapseLive.banner().startsWith('complete') && "
                      f"window.layerlapseLive.snapshots() === {EPOCHS + 1}", timeout_s=120)
            assert live.js("window.layerlapse.state().epoch") == EPOCHS  # followed the newest
            assert live.errors == [] and live.blocked == []
        assert process.wait(60) == 0
    finally:
        server.stop()
