"""The time-lapse in a notebook: `show(run)` gives a widget (anywidget) drawn by the report's own JavaScript, whose
arrays travel as binary buffers; what is selected on it comes back as probe ids and a pandas table. A recording
with `live=True` shows it under the cell and adds each snapshot as it is mapped (`live.LiveDisplay`).

anywidget and pandas are the `notebook` extra: the rest of layerlapse never needs them, and a missing one is a
one-line error with the install hint. Torch is never imported here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import LayerlapseError
from .needs import INSTALL_HINT, NotebookError, require

if TYPE_CHECKING:
    from ..store.run import RunFolder
    from .widget import LapseWidget


def show(run: RunFolder | str | os.PathLike, *, layers: Sequence[str] | None = None, max_points: int | None = None,
         encoding: str = "raw", palette: str = "tab10") -> LapseWidget:
    """The run's time-lapse as a notebook widget: the map of a recorded layer at each snapshot, with a slider and
    play, colouring by class or a measure, test points, a hover thumbnail, a clicked point's trail, and box or
    lasso selection, read back with `widget.selected` (probe ids) and `widget.selection()` (a DataFrame).

    Parameters
    ----------
    run
        A stored run folder (`load_run`) or its path; a run in progress shows its mapped snapshots.
    layers
        The recorded layers the widget can switch between, the first shown first; default: all of them.
    max_points
        Show at most this many probe points (a stratified, seeded subsample, which the widget notes); default all.
    encoding
        How the arrays travel to the browser: "raw" bytes (default) or "gzip" (fewer bytes over a slow link).
    palette
        The class colours: "tab10" (the frames' and the report's default) or "colorblind" (Petroff's ten, safe for
        colour-blind readers: `render.style.COLORBLIND10`; up to ten classes).

    Returns
    -------
    LapseWidget
        The widget (the last expression of a cell displays it); `refresh()` adds snapshots stored since.

    Raises
    ------
    NotebookError
        When anywidget or pandas is not installed (`pip install "layerlapse[notebook]"`).
    RunFolderError
        For a path that is not a run folder, or a chosen layer without maps yet.
    ConfigError
        For a layer the run did not record, a `max_points` that is not a positive number, an unknown encoding or
        palette, or the colour-blind palette for more than ten classes.
    """
    require("anywidget")
    require("pandas")
    from ..store.run import RunFolder, load_run
    from .widget import LapseWidget

    folder = run if isinstance(run, RunFolder) else load_run(run)
    return LapseWidget(folder, layers=layers, max_points=max_points, encoding=encoding, palette=palette)


def run_display(run: RunFolder) -> tuple[dict, dict]:
    """A run folder's rich display in a notebook, as (data, metadata) (IPython's mimebundle formatter, registered
    by `layerlapse/__init__.py`): the widget where anywidget is installed and the run has maps, else its text."""
    try:
        bundle = show(run)._repr_mimebundle_()
    except LayerlapseError as error:
        return {"text/plain": f"{run!r}\n(no map to show: {error})"}, {}
    return bundle if isinstance(bundle, tuple) else (bundle, {})


__all__ = ["INSTALL_HINT", "NotebookError", "require", "run_display", "show"]
