"""A real run for tests that read one: the reference experiment recorded, then mapped and drawn in this process.

`run_experiment` maps each epoch in a worker process while the next one trains. A fixture that only needs the
finished run folder gains nothing from that worker but its start (a fresh interpreter that imports numpy and the
map's libraries, on a machine whose cores the other tests share), and a test that stands in for the worker needs
maps made without it. So these record with `record_run` and finish as a Recorder with no worker does
(`complete_run`): the same run folder, every map made here. `recorded_loop` records a user's own small loop instead.
"""

from __future__ import annotations

from pathlib import Path

from layerlapse.config import RunConfig
from layerlapse.store.run import RunFolder


def recorded_and_drawn(config: RunConfig, out: str | Path) -> RunFolder:
    """The run folder `out` of the reference experiment under `config`, complete, its lock given back."""
    from layerlapse.recipe.steps import complete_run
    from layerlapse.reference.train import record_run

    run = record_run(config, str(out), show_progress=False)
    try:
        complete_run(run, show_progress=False)
    finally:
        run.close()
    return run


def recorded_loop(model, x, y, layers: list[str], out: str | Path, *, epochs: int, steps: int, lr: float,
                  **settings) -> RunFolder:
    """A small model trained full-batch on (x, y) with SGD in a loop of its own, `steps` a epoch, recorded by a
    Recorder (the probe x unless `settings` gives one) and drawn: the complete run folder."""
    import torch
    from torch import nn

    from layerlapse import Recorder

    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    recorder = Recorder(model, layers, settings.pop("probe", x), y, out, **settings)
    recorder.start()
    for epoch in range(1, epochs + 1):
        for _ in range(steps):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        recorder.epoch_end(epoch, metrics={"loss": loss.item()})
    return recorder.finish()

