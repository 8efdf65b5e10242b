"""A run folder as a watcher sees it: where the run is (its banner's words) and the page for what it has committed so
far, read without the lock and never written. A run that records commits each file before the manifest that lists it,
so a manifest read here always lists whole files; what a redraw swaps away between two reads is read again at the
next poll.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import REPORT_BUDGET_MB
from ..errors import ConfigError, LayerlapseError, RunFolderError
from ..report.content import chosen_layers, mapped_snapshots
from ..report.live import live_parts
from ..store import layout
from ..store.run import RunFolder

MIN_REST_S = 0.5  # the least time between two pages made (see `rest`)


@dataclass(frozen=True)
class RunState:
    """What the banner says, and the version of the page: None while there is nothing to draw."""

    status: str  # waiting, running, interrupted, failed, complete, gone, unreadable
    banner: str
    version: str | None
    snapshots: int = 0  # mapped: the page's frames
    recorded: int = 0
    planned: int | None = None

    def as_json(self) -> dict:
        return {"status": self.status, "banner": self.banner, "version": self.version, "snapshots": self.snapshots,
                "recorded": self.recorded, "planned": self.planned}


def check_watchable(path: Path) -> None:
    """A one-line ConfigError for a path that can never hold a run: a file, or a folder of other things. A path that
    does not exist yet, or an empty folder, is a run to wait for."""
    if path.is_file() or (path.exists() and not path.is_dir()):
        raise ConfigError(f"{path} is a file, not a run folder: pass the folder a run writes to (its --out)")
    if path.is_dir() and not (path / layout.MANIFEST).exists() and not _starting(path):
        raise ConfigError(f"{path} holds no layerlapse run (no {layout.MANIFEST}): pass the folder a run writes to "
                          "(its --out), or a new folder to wait for a run there")


def _starting(path: Path) -> bool:
    """Empty, or holding only what a writer makes before its first manifest: the lock and temp files, whose names
    start with "." (store.layout)."""
    return all(entry.name.startswith(".") for entry in path.iterdir())


class WatchedRun:
    """A run folder, looked at as often as browsers ask (a stat of its manifest each time, read again only when it
    changed); the page for its newest state is made once, shared by every browser, and made again at most once per
    `rest(last making)` so that a run committing snapshots fast never has its watcher rebuild pages back to back."""

    def __init__(self, path: Path, *, size_budget_mb: float = REPORT_BUDGET_MB) -> None:
        self.path = Path(path)
        self.size_budget_mb = size_budget_mb
        self.seen = False  # whether a run was ever seen here: a folder gone after that is a run deleted
        self._page: tuple[str, bytes] | None = None  # (version, parts)
        self._making = threading.Lock()
        self._reading = threading.Lock()
        self._opened: tuple[tuple[int, int, int], RunFolder] | None = None  # (the manifest's stat, the run)
        self._made_at = -math.inf  # time.monotonic() when the last page was made, and how long that took
        self.making_s = 0.0  # the processor time making the last page took
        self.problem: str | None = None  # why the last page could not be made, for the banner

    @property
    def page_version(self) -> str | None:
        """The version of the page made last: what a browser that asks for the page gets now."""
        page = self._page
        return None if page is None else page[0]

    def state(self) -> RunState:
        run_or_state = self._open()
        if isinstance(run_or_state, RunState):
            return run_or_state
        state = _state_of(run_or_state)
        if self.problem is not None:
            return dataclasses.replace(state, banner=f"{state.banner} · the page cannot be made: {self.problem}")
        return state

    def page(self) -> tuple[str, bytes] | None:
        """The page's parts for the run as it stands (made at most once per version, and not again within the rest
        after the last), or the last page made when the run cannot be read now; None before there is anything to
        draw."""
        with self._making:
            run = self._open()
            if isinstance(run, RunState):
                return self._page
            state = _state_of(run)
            if state.version is None or (self._page is not None and self._page[0] == state.version):
                return self._page
            if time.monotonic() - self._made_at < rest(self.making_s):
                return self._page
            started = time.thread_time()  # the processor time making it takes, not the wait for a busy processor
            try:
                self._page = (state.version, live_parts(run, state.version, size_budget_mb=self.size_budget_mb))
                self.problem = None
            except (RunFolderError, OSError):
                pass  # a file swapped away between two reads: tried again after the rest
            except (LayerlapseError, ValueError) as error:  # a budget too small for the page: said on the banner
                self.problem = str(error)
            # a page that failed rests too: a run that cannot be drawn is not read again four times a second
            self._made_at, self.making_s = time.monotonic(), time.thread_time() - started
            return self._page

    def _open(self) -> RunFolder | RunState:
        manifest = self.path / layout.MANIFEST
        try:
            found = os.lstat(manifest)
        except FileNotFoundError:
            if self.seen and not self.path.exists():
                return RunState("gone", f"the run folder {self.path} is gone (deleted or moved); waiting for a run "
                                        "to appear there", None)
            return RunState("waiting", f"waiting for a run to start in {self.path}", None)
        except OSError as error:
            return RunState("unreadable", f"the run cannot be read now: {error}", None)
        signature = (found.st_ino, found.st_size, found.st_mtime_ns)  # each commit renames a new manifest in
        with self._reading:
            if self._opened is not None and self._opened[0] == signature:
                return self._opened[1]
            try:
                run = RunFolder.open(self.path, verify=False)
            except RunFolderError as error:
                return RunState("unreadable", f"the run cannot be read now: {error}", None)
            self._opened = (signature, run)
        self.seen = True
        return run


def rest(making_s: float) -> float:
    """How long after a page was made the next may be: twice the processor time making it took, at least half a
    second (a page of 1,000 points takes about 0.4-1.2 s here), so the watcher uses at most a third of a core however
    fast the run commits, and a run that commits a snapshot every few seconds has each one shown."""
    return max(MIN_REST_S, 2 * making_s)


def _state_of(run: RunFolder) -> RunState:
    recorded = run.epochs_complete + 1
    planned = _planned(run)
    try:
        layers = chosen_layers(run, None)
    except (RunFolderError, ConfigError) as error:
        return RunState("unreadable", f"the run cannot be read now: {error}", None, 0, recorded, planned)
    mapped = mapped_snapshots(run, layers)
    word = "snapshot"
    of = f" of {planned}" if planned else ""
    status = run.status
    if status == "running":
        age = _age(run)
        banner = (f"training: {word} {recorded}{of} recorded, {mapped} mapped, last {age}" if mapped < recorded
                  else f"training: {word} {recorded}{of}, last {age}")
    elif status == "interrupted":
        banner = f"interrupted at {word} {recorded}{of}: continue it with --resume"
    elif status == "failed":
        banner = f"failed at {word} {recorded}{of}"
    else:
        banner = f"complete: {recorded} {word}s"
        if mapped < recorded:
            banner += f", {mapped} mapped (`layerlapse render {run.path}` maps the rest)"
    version = None if mapped == 0 else _version(run, status, mapped)
    if mapped == 0 and status == "running":
        banner += " (the first map is on its way)"
    return RunState(status, banner, version, mapped, recorded, planned)


def _planned(run: RunFolder) -> int | None:
    epochs = (run.manifest.get("config") or {}).get("epochs")
    return epochs + 1 if isinstance(epochs, int) and not run.manifest.get("snapshots") else None


def _age(run: RunFolder) -> str:
    """How long ago the run last committed, in words: "12 s ago"."""
    try:
        seconds = max(0.0, time.time() - os.lstat(run.path / layout.MANIFEST).st_mtime)
    except OSError:
        return "a moment ago"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    return f"{seconds / 60:.0f} min ago"


def _version(run: RunFolder, status: str, mapped: int) -> str:
    """Changes exactly when the page would show something new: a snapshot mapped, the run's end, its maps or
    per-image dynamics redrawn (their checksums), its history grown."""
    shown = {relpath: digest for relpath, digest in run.manifest["files"].items()
             if relpath.startswith(("maps/", "dynamics/", "predictions/", "test/probe/predictions/"))}
    key = json.dumps([status, mapped, len(run.history), sorted(shown.items())])
    return hashlib.sha256(key.encode()).hexdigest()[:16]
