"""What the pictures add to a real run's epoch, with the map made by the worker process while the next epoch trains.

`bench/epoch_stages.py` adds the stages up one after the other, as if the run waited for each. A run does not: the
worker maps epoch t on one core while epoch t+1 trains. This script measures what a run really pays, in wall time:

1. training only: the same epochs (train + validation, the same seeds) without any recording, one after the other;
2. a recorded run (`record_run` with the probe, the 1,000-image test probe and the aligned map alongside), timed
   from the moment the worker has caught up with epoch 1 (so the cold first map of epoch 0 is not counted) to the
   moment it has caught up with the last epoch, plus drawing those epochs' frames.

    LAYERLAPSE_DATA=../shared/data python bench/alongside.py --probe 60000 --epochs 4 --schedules yield,fixed,between

`--schedules` compares ways of sharing the cores in one session (see `layerlapse._util.threads`): "fixed" (the default:
training keeps its threads, the worker one), "yield" (training gives the worker a core while it maps) and "between"
(each epoch waits for the last one's map). Prints the per-epoch times and the share the pictures add, with the wait
for the last map (once per run) shared by the timed epochs, and by the 15 epochs of the reference run. Training only
runs before and after the recorded run (its median over both is the baseline), so a change in load shows in its
spread; still, run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from layerlapse.render import figures as render
from layerlapse._util import threads
from layerlapse.config import RunConfig
from layerlapse.reference.data import load_dataset
from layerlapse._util.memory import keep_freed_memory
from layerlapse.reference.models import build_model
from layerlapse.recipe.mapping import MapAlongside
from layerlapse.store.layout import epoch_file
from layerlapse._util.threads import training_threads
from layerlapse.reference.train import (evaluate, images_to_tensor, make_optimizer, prepare_model, record_run,
                                        split_validation, train_epoch)
from maps import cpu_flags, cpu_name  # beside this script


def training_only(config: RunConfig) -> list[float]:
    """Seconds of each epoch of plain training (train + validation), as record_run trains, without recording."""
    dataset = load_dataset(config.dataset)
    torch.manual_seed(config.seed)
    model = prepare_model(build_model(dataset.x_train.shape[1:], len(dataset.class_names)), torch.device("cpu"))
    optimizer = make_optimizer(model, config.learning_rate)
    x = images_to_tensor(dataset.x_train, torch.device("cpu"))
    y = torch.from_numpy(dataset.y_train)
    train_indices, val_indices = split_validation(len(x), config.validation_split, config.seed)
    seconds = []
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        train_epoch(model, optimizer, x, y, train_indices, config.batch_size, seed=config.seed * 100_003 + epoch,
                    show_progress=False)
        evaluate(model, x[val_indices], y[val_indices])
        seconds.append(time.perf_counter() - started)
    return seconds


# how the map and the training share the cores (see layerlapse._util.threads)
SCHEDULES = {
    "fixed": "map alongside; training keeps all its threads (the default)",
    "yield": "map alongside; training gives the worker a core while it maps (training_threads.yield_cores)",
    "between": "map between epochs: the next epoch waits for the map",
}


@contextlib.contextmanager
def schedule_rule(schedule: str) -> Iterator[None]:
    """The thread rule of a schedule: "yield" turns the training's yield on for the run."""
    kept = training_threads.yield_cores
    training_threads.yield_cores = schedule == "yield"
    try:
        yield
    finally:
        training_threads.yield_cores = kept


def catch_up(alongside: MapAlongside, run) -> None:
    """Wait for the frames of every epoch submitted so far and store them, the worker left running for later epochs:
    the wait a run makes after its last epoch (MapAlongside.finish, which then stops the worker), here mid-run."""
    alongside._wait_saying_what_for(run, show_progress=False)


def recorded_run(config: RunConfig, folder: Path, schedule: str = "fixed") -> tuple[float, float, list[float], float]:
    """Wall seconds per epoch of a recorded run with the map made as `schedule` says (epochs 2..N, caught up), the
    seconds to draw one frame, the training seconds per epoch that the run's history gives for the same epochs, and
    the wait for the last map after the last epoch (once per run, however many epochs)."""
    alongside = MapAlongside(config.map_method)
    marks: dict[str, float] = {}

    def on_epoch(run, epoch: int) -> None:
        alongside(run, epoch)
        if epoch == config.epochs:
            marks["last"] = time.perf_counter()  # training is over; what follows is the wait for the last map
        if epoch in (1, config.epochs) or schedule == "between":
            catch_up(alongside, run)
        if epoch in (1, config.epochs):
            marks["start" if epoch == 1 else "end"] = time.perf_counter()

    try:
        with schedule_rule(schedule):
            run = record_run(config, str(folder), force=True, show_progress=False, on_epoch=on_epoch)
    finally:
        alongside.stop()
    epochs = range(2, config.epochs + 1)
    maps = [run.read_array(f"maps/hidden/{epoch_file(epoch)}") for epoch in epochs]
    labels = run.read_array("probe/labels.npy")
    limits = render.common_limits(maps)
    started = time.perf_counter()
    for epoch, xy in zip(epochs, maps):
        render.draw_frame(xy, labels, [str(d) for d in range(10)], folder / f"frame_{epoch}.png",
                          title=f"Epoch {epoch}", caption="caption\nsecond line", limits=limits)
    frame = (time.perf_counter() - started) / len(maps)
    wall = (marks["end"] - marks["start"]) / len(maps)
    history = [row["seconds"] for row in run.history if row["epoch"] >= 2]
    return wall, frame, history, marks["end"] - marks["last"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=4, help="at least 3: epochs 2..N are timed")
    parser.add_argument("--schedules", default="fixed", help=f"comma-separated, of {', '.join(SCHEDULES)}")
    args = parser.parse_args()
    schedules = args.schedules.split(",")
    if unknown := set(schedules) - set(SCHEDULES):
        parser.error(f"unknown schedule {', '.join(sorted(unknown))}: choose from {', '.join(SCHEDULES)}")
    keep_freed_memory()  # as a run has it: the training-only epochs too, so both sides use the same allocator
    config = RunConfig(dataset="mnist", epochs=args.epochs, probe=None if args.probe >= 60_000 else args.probe)
    plain = training_only(config)[1:]
    measured = {}
    for schedule in schedules:
        with tempfile.TemporaryDirectory() as folder:
            measured[schedule] = recorded_run(config, Path(folder) / "run", schedule)
    plain += training_only(config)[1:]  # before and after, so a change in load shows in the spread
    train = statistics.median(plain)
    print(f"# {datetime.date.today()} · {platform.node()} · {cpu_name()} ({cpu_flags()}) · "
          f"{threads.available_cores()} cores · torch {torch.__version__} · probe {args.probe:,} · "
          f"epochs 2–{args.epochs} timed")
    print(f"training only (train + validation), median {train:.2f} s ({', '.join(f'{s:.1f}' for s in plain)})\n")
    print("| schedule | wall s/epoch until caught up | drawing a frame | run's own training (history, median) | "
          "last map's wait | the pictures add | shared over 15 epochs |")
    print("|---|---|---|---|---|---|---|")
    timed, reference_epochs = args.epochs - 1, 15
    for schedule, (wall, frame, history, last_wait) in measured.items():
        added = wall + frame - train
        shared = (wall * timed - last_wait) / timed + last_wait / reference_epochs + frame - train
        print(f"| {schedule}: {SCHEDULES[schedule]} | {wall:.2f} | {frame:.2f} | {np.median(history):.2f} | "
              f"{last_wait:.2f} | {added:.1f} s = {100 * added / train:.0f} % | {shared:.1f} s = "
              f"{100 * shared / train:.0f} % |")


if __name__ == "__main__":
    main()
