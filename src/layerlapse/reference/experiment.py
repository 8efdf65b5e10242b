"""The whole reference experiment in one call: train and record with the built-in loop, then the recipe's steps
(map, measure, draw) over the run folder it wrote."""

from __future__ import annotations

import os

from ..config import RunConfig
from ..recipe.mapping import MapAlongside, map_run
from ..recipe.steps import render_run
from ..store.run import RunFolder


def run_experiment(config: RunConfig, out: str | os.PathLike, *, data_dir: str | None = None, force: bool = False,
                   resume: bool = False, show_progress: bool = True) -> RunFolder:
    """Train, record, map and draw: the whole reference experiment into the run folder `out`.

    A worker process maps epoch t while epoch t+1 trains, so the run waits only for the last map (the
    `aligned-umap` method maps every epoch at once, after training). What `layerlapse run` and `layerlapse demo`
    call.

    Parameters
    ----------
    config : RunConfig
        What to train, record and map: the dataset, epochs, layers, probe, map method and so on.
    out : str or os.PathLike
        The run folder to write: absent or empty, unless `force` (which replaces only a layerlapse run) or
        `resume` is given.
    data_dir : str, optional
        Where to look for the dataset's files first, and where to download them when they are found nowhere (see
        `load_dataset`); None: `$LAYERLAPSE_DATA/<dataset>`, then the cache, `~/.cache/layerlapse/<dataset>`.
    force : bool, default False
        Replace the run already in `out`.
    resume : bool, default False
        Continue the interrupted run in `out` from its last complete epoch, with its stored settings (`config`'s
        are not used then).
    show_progress : bool, default True
        Progress bars and notes on stderr.

    Returns
    -------
    RunFolder
        The complete run, its lock given back; `load_run(out)` opens it again later.

    Examples
    --------
    Two epochs on scikit-learn's bundled digits, offline (a first run also compiles the map's code, about a
    minute):

    >>> from layerlapse import RunConfig, run_experiment
    >>> run = run_experiment(RunConfig(dataset="digits", epochs=2), "runs/digits", show_progress=False)
    >>> (run.path / "report.html").exists()
    True
    """
    from .train import record_run  # torch is only needed here

    alongside = MapAlongside(config.map_method) if config.map_method != "aligned-umap" else None
    run = None
    try:
        run = record_run(config, str(out), data_dir=data_dir, force=force, resume=resume,
                         show_progress=show_progress, on_epoch=alongside)
        with run.noting_failure():
            if alongside is not None:
                alongside.finish(run, show_progress=show_progress)
            map_run(run, show_progress=show_progress)
            render_run(run, show_progress=show_progress)
        run.commit("complete")
        return run
    finally:
        if alongside is not None:
            alongside.stop()
        if run is not None:
            run.close()  # the run's lock, held since it was created or reopened
