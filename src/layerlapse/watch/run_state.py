"""A run folder as a watcher sees it: where the run is (its banner's words) and the page for what it has committed so
far, read without the lock and never written. A run that records commits each file before the manifest that lists it,
so a manifest read here always lists whole files; what a redraw swaps away between two reads is read again at the
next poll.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import REPORT_BUDGET_MB
from ..errors import ConfigError, RunFolderError
from ..report.content import chosen_layers, mapped_snapshots
from ..report.live import live_parts
from ..store import layout
from ..store.run import RunFolder

# What a killed or starting writer may leave in a folder before its first manifest: the lock and temp files
_STARTING = (layout.LOCK,)


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
    """Empty, or holding only what a writer makes before its first manifest."""
    return all(entry.name in _STARTING or entry.name.startswith(".") for entry in path.iterdir())


class WatchedRun:
    """A run folder, read afresh at each look; the page for its newest state is made once and shared by every
    browser that asks."""

    def __init__(self, path: Path, *, size_budget_mb: float = REPORT_BUDGET_MB) -> None:
        self.path = Path(path)
        self.size_budget_mb = size_budget_mb
        self.seen = False  # whether a run was ever seen here: a folder gone after that is a run deleted
        self._page: tuple[str, bytes] | None = None  # (version, parts)
        self._making = threading.Lock()

    def state(self) -> RunState:
        run_or_state = self._open()
        if isinstance(run_or_state, RunState):
            return run_or_state
        return _state_of(run_or_state)

    def page(self) -> tuple[str, bytes] | None:
        """The page's parts for the run as it stands (made at most once per version), or the last page made when the
        run cannot be read now; None before there is anything to draw."""
        with self._making:
            run = self._open()
            if isinstance(run, RunState):
                return self._page
            state = _state_of(run)
            if state.version is None:
                return self._page
            if self._page is None or self._page[0] != state.version:
                try:
                    self._page = (state.version, live_parts(run, state.version, size_budget_mb=self.size_budget_mb))
                except (RunFolderError, OSError, ValueError):
                    return self._page  # a file swapped away between two reads: the next poll reads it again
            return self._page

    def _open(self) -> RunFolder | RunState:
        manifest = self.path / layout.MANIFEST
        if not manifest.exists():
            if self.seen and not self.path.exists():
                return RunState("gone", f"the run folder {self.path} is gone (deleted or moved); waiting for a run "
                                        "to appear there", None)
            return RunState("waiting", f"waiting for a run to start in {self.path}", None)
        try:
            run = RunFolder.open(self.path, verify=False)
        except RunFolderError as error:
            return RunState("unreadable", f"the run cannot be read now: {error}", None)
        self.seen = True
        return run


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
