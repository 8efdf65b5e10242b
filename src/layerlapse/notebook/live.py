"""The live display: a recording made with `live=True` (a Recorder or a framework callback) shows the lapse under
the notebook cell at its first snapshot and adds each snapshot as it is mapped, then shows the finished run.

The recording session calls `live_display` after each snapshot, after the mapping worker's frames are stored (the
maps' storer thread, recipe.mapping, while the next epoch trains) and once at its end: the maps come from the mapping
worker alongside training ("aligned", "independent", "pca"), so the widget follows the training by the time a map
takes; with "aligned-umap", which maps the whole run at once, it shows the maps when training ends. Outside a
notebook (no IPython kernel), or without anywidget, a warning says so once and the recording goes on.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from ..errors import RecordingWarning
from ..report.content import mapped_snapshots
from ..store.run import RunFolder
from .needs import INSTALL_HINT

NOT_A_NOTEBOOK = ("live=True shows the lapse under a notebook cell, but this is not a notebook (no IPython kernel): "
                  "recording without it; show the run later with layerlapse.show(run) in a notebook, or open its "
                  "report.html")


def in_notebook() -> bool:
    """Whether this process is a notebook's kernel (IPython with a kernel: Jupyter, VS Code, Colab)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


class LiveDisplay:
    """The widget shown under the cell, refreshed when the run has new maps (and once more at its end)."""

    def __init__(self, run: RunFolder) -> None:
        from IPython.display import display

        from .widget import LapseWidget

        self.run = run
        self.widget = LapseWidget(run, wait=True)
        display(self.widget)

    def update(self, done: bool = False) -> None:
        if done or mapped_snapshots(self.run, self.run.layers) != self.widget.snapshots:
            self.widget.refresh()


class NotShown:
    """live=True where it cannot show: warned once, then nothing."""

    def update(self, done: bool = False) -> None:
        pass


def live_display(run: RunFolder, display: Any = None, *, done: bool = False) -> LiveDisplay | NotShown:
    """The session's live display (`display`, None at first): made and shown at the first call, then updated.

    Parameters
    ----------
    run
        The run being recorded.
    display
        What the last call returned, or None at the first.
    done
        The recording has ended: show the finished run.

    Returns
    -------
    LiveDisplay or NotShown
        What to pass to the next call.
    """
    if display is None:
        display = _started(run)
    display.update(done)
    return display


def _started(run: RunFolder) -> LiveDisplay | NotShown:
    if not in_notebook():
        warnings.warn(RecordingWarning(NOT_A_NOTEBOOK), stacklevel=4)
        return NotShown()
    try:
        import anywidget  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as error:
        warnings.warn(RecordingWarning(f"live=True needs {error.name or 'anywidget'}, which is not installed: "
                                       f"recording without the live display; {INSTALL_HINT}"), stacklevel=4)
        return NotShown()
    return LiveDisplay(run)
