"""The whole reference experiment in one call: train and record with the built-in loop, then the recipe's steps
(map, measure, draw) over the run folder it wrote."""

from __future__ import annotations

import os

from ..config import RunConfig
from ..recipe.steps import MapAlongside, map_run, render_run
from ..store.run import RunFolder


def run_experiment(config: RunConfig, out: str | os.PathLike, *, data_dir: str | None = None, force: bool = False,
                   resume: bool = False, show_progress: bool = True, background: bool = True) -> RunFolder:
    """Train, record, map and draw: the whole reference experiment into the run folder `out`.

    With `background`, a worker process maps epoch t while epoch t+1 trains, so the run waits only for the last map.
    """
    from .train import record_run  # torch is only needed here

    alongside = MapAlongside(config.map_method) if background and config.map_method != "aligned-umap" else None
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
