"""`compare`: several runs, one lapse, written into a comparison folder: `report.html` (the report's page with the
runs side by side), `figures/`, `measures.json` (every measure, per snapshot and per pair of runs) and `items.npz`
(the per-item arrays). Torch is never imported: the stored run folders are all it reads, and it only reads them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..config import REPORT_BUDGET_MB
from ..errors import ConfigError
from ..report.budget import MB, fit_to_budget
from ..report.page import render_page
from .compute import Compared, measure
from .content import comparison_content
from .figures import draw_figures
from .folder import ComparisonFolder
from .join import join_runs
from .measures import NEIGHBOUR_ITEMS, NEIGHBOUR_K
from .page import comparison_extras
from .summary import measures_summary


def compare(runs: Sequence[str | os.PathLike], out: str | os.PathLike, *, names: Sequence[str] | None = None,
            force: bool = False, size_budget_mb: float = REPORT_BUDGET_MB, neighbour_items: int = NEIGHBOUR_ITEMS,
            show_progress: bool = False) -> Path:
    """Compare runs recorded on the same probe: write the comparison folder `out` and return its path.

    The runs are joined on their probe items (by dataset index, else by position; checked by class and
    thumbnail) and their snapshots matched (by epoch, else by the fraction of training); a mismatch is a one-line
    `CompareError`. The runs are only read.

    Parameters
    ----------
    runs : sequence of path
        Two run folders or more (complete, mapped); the others' maps are turned onto the first's. One folder
        twice compares a run with itself.
    out : path
        The comparison folder to write: not inside a run folder; empty, or a comparison to replace with `force`.
    names : sequence of str, optional
        What to call each run; default "A", "B", ….
    force : bool
        Replace the comparison already in `out` (only the files it lists).
    size_budget_mb : float
        The page's largest size, in SI megabytes; past it the page shows a stratified subsample and says so.
    neighbour_items : int
        The items among which each item's 10 nearest neighbours are found (a seeded sample beyond; the others are
        not measured): the search is exact, and its time grows with the square of this number (10,000: about a
        second per run, layer and snapshot on 2 cores).
    show_progress : bool
        A progress bar on stderr while measuring.

    Returns
    -------
    Path
        The comparison folder; open its `report.html`.

    Examples
    --------
    >>> from layerlapse import compare
    >>> folder = compare(["runs/seed0", "runs/seed1"], "runs/compare")  # doctest: +SKIP
    >>> sorted(path.name for path in folder.iterdir())  # doctest: +SKIP
    ['comparison.json', 'figures', 'items.npz', 'measures.json', 'report.html']
    """
    if not size_budget_mb > 0:
        raise ConfigError(f"size_budget_mb must be a positive number of megabytes, got {size_budget_mb!r}")
    if isinstance(neighbour_items, bool) or not isinstance(neighbour_items, int) or neighbour_items <= NEIGHBOUR_K:
        raise ConfigError(f"neighbour_items must be a whole number above {NEIGHBOUR_K}, got {neighbour_items!r}")
    joined = join_runs(runs, names)
    with ComparisonFolder.create(out, [run.path for run in joined.runs], force=force) as folder:
        # everything made before anything is written: a comparison that fails (a size budget too small for its
        # page) leaves the one it was to replace as it was
        compared = measure(joined, neighbour_items=neighbour_items, show_progress=show_progress)
        summary = measures_summary(compared)
        figures = draw_figures(compared, summary)
        extras = comparison_extras(compared)
        page = fit_to_budget(comparison_content(compared), int(size_budget_mb * MB), size_budget_mb,
                             lambda shown: render_page(shown, extras))
        folder.write_json("measures.json", summary)
        folder.write_bytes("items.npz", _items_npz(compared))
        for name, png in figures.items():
            folder.write_bytes(f"figures/{name}.png", png)
        folder.write_bytes("report.html", page.encode("utf-8"))
        folder.commit({"runs": [{"name": name, "path": os.fspath(run.path)}
                                for name, run in zip(joined.names, joined.runs)],
                       "items": joined.n_items, "snapshots": len(joined.frames)})
    return Path(out)


def _items_npz(compared: Compared) -> bytes:
    """The per-item arrays, without pickles: ids, classes, each run's predictions and dynamics, each pair's
    neighbour overlaps and agreement."""
    joined = compared.joined
    arrays = {"labels": joined.labels, "ids": joined.indices if joined.indices is not None else joined.rows[0]}
    for k, name in enumerate(joined.names):
        arrays[f"run{k}_rows"] = joined.rows[k]
        arrays[f"run{k}_predicted"] = compared.predicted[k]
        arrays[f"run{k}_first_learned"] = compared.dynamics[k].first_learned
        arrays[f"run{k}_forgetting_events"] = compared.dynamics[k].forgetting_events
    for pair in compared.pairs:
        arrays[f"pair{pair.left}_{pair.right}_agreement"] = pair.agreement
        for (a, b), overlap in pair.overlap.items():
            arrays[f"pair{pair.left}_{pair.right}_overlap_{a}_{b}"] = overlap
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{key: np.asarray(value) for key, value in arrays.items()})
    return buffer.getvalue()
