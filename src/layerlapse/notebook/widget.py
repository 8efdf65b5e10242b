"""`LapseWidget`: the time-lapse as a notebook widget (anywidget), drawn by the report's own JavaScript (esm.py),
its arrays sent as binary buffers (state.py). What is selected on the map comes back as probe ids and a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import anywidget
import numpy as np
import traitlets

from ..errors import RunFolderError
from ..store.run import RunFolder
from .esm import widget_module
from .state import Packed, WidgetState, waiting

if TYPE_CHECKING:
    import pandas


class LapseWidget(anywidget.AnyWidget):
    """The map of a run's recorded layers at each snapshot, with a slider, play, colouring by class or a measure,
    test points, a hover thumbnail, a clicked point's trail, and box or lasso selection (`selected`,
    `selection()`); made by `layerlapse.show`.

    Parameters
    ----------
    run
        The stored run folder (a run in progress too: the widget shows its mapped snapshots; `refresh` adds more).
    layers
        The recorded layers the widget can switch between, the first shown first; default: all of them.
    max_points
        Show at most this many probe points (a stratified, seeded subsample, and a note says so); default all.
    encoding
        How the arrays travel: "raw" bytes (default: fastest to load on the same machine) or "gzip" (the report's
        gzip of frame deltas, decoded in the browser: fewer bytes over a slow link).
    palette
        The class colours: "tab10" (default) or "colorblind" (the report's colour-blind-safe ten, up to ten classes).
    wait
        A run not mapped yet (a live recording's start) shows a note until `refresh` finds its maps, instead of
        raising RunFolderError.
    """

    _esm = widget_module()
    payload = traitlets.Unicode("{}").tag(sync=True)
    arrays = traitlets.Dict().tag(sync=True)
    images = traitlets.Dict().tag(sync=True)
    snapshots = traitlets.Int(0).tag(sync=True)
    frame = traitlets.Int(-1).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    selected_points = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(self, run: RunFolder, *, layers: Sequence[str] | None = None, max_points: int | None = None,
                 encoding: str = "raw", palette: str = "tab10", wait: bool = False) -> None:
        self._reader = WidgetState(run, layers, max_points, encoding, palette)
        self._wait = wait
        packed = self._read()
        super().__init__(payload=packed.payload, arrays=packed.arrays, images=packed.images,
                         snapshots=packed.snapshots, frame=packed.snapshots - 1, layer=self._reader.layers[0])

    def _read(self) -> Packed:
        try:
            self._packed = self._reader.read()
        except RunFolderError as error:
            if not self._wait:
                raise
            self._packed = waiting(self.run, str(error))
        return self._packed

    @property
    def run(self) -> RunFolder:
        """The run folder shown."""
        return self._reader.run

    def refresh(self) -> int:
        """Read the run folder again and show its new snapshots (the images are never sent again); return how
        many snapshots the widget now holds. The slider follows the last snapshot when it stood on the last one."""
        was_last = self.frame >= self.snapshots - 1
        packed = self._read()
        with self.hold_sync():
            self.payload = packed.payload
            self.arrays = packed.arrays
            self.images = packed.images
            self.snapshots = packed.snapshots
            if was_last or self.frame >= packed.snapshots:
                self.frame = packed.snapshots - 1
        return packed.snapshots

    @property
    def selected(self) -> np.ndarray:
        """The probe ids (rows of the run folder's probe arrays) selected on the map, sorted; empty for none."""
        points = np.asarray(self.selected_points, dtype=np.int64)
        rows = self._packed.rows
        if len(points) and (points.min() < 0 or points.max() >= len(rows)):
            points = points[(points >= 0) & (points < len(rows))]
        return np.sort(rows[points]).astype(np.int64)

    def selection(self) -> pandas.DataFrame:
        """The selected probe images as a table, one row each: id, label, prediction, confidence (at the shown
        snapshot) and their dynamics over the run (see `layerlapse.notebook.selection_table`)."""
        from .selection import selection_table

        return selection_table(self.run, self.selected, self.shown_snapshot)

    @property
    def shown_snapshot(self) -> int:
        """The snapshot the slider shows (the last one until it is moved)."""
        epochs = self._packed.content.epochs if self._packed.content is not None else [self.run.epochs_complete]
        return int(epochs[self.frame if 0 <= self.frame < len(epochs) else -1])

    def __repr__(self) -> str:
        return (f"LapseWidget({self.run.path.name}: {len(self._packed.rows):,} probe points, "
                f"{self.snapshots} snapshots, layer {self.layer})")
