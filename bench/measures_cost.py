"""What "what the network learned, and when" adds to `render` and so to a run: the per-image dynamics (probe and test
probe, stored and drawn as the data map), the layer measures (k-NN, linear probe, CKA of every pair of snapshots and
of layers) and their figures, per snapshot, against one training epoch of the reference experiment timed in the
same process (before and after the measures, so both see the same machine).

    LAYERLAPSE_DATA=../shared/data python bench/measures_cost.py RUN [RUN ...] [--repeats 3] [--train-repeats 2]

Each RUN is a stored run folder (read only: everything is written to a temporary folder). The goal (issue 14): all
of it together at most a tenth of a training epoch per snapshot at 10,000 probe points.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
from pathlib import Path

import numpy as np
from epoch_stages import reference_training, timed  # beside this script
from maps import cpu_name


def training_epoch(repeats: int) -> list[float]:
    """Seconds of one training epoch of the reference CNN on MNIST (48,000 images, batch 100), `repeats` times."""
    from layerlapse.reference.train import train_epoch

    _, x, y, model, optimizer, train_indices, _ = reference_training()
    return [timed(lambda: train_epoch(model, optimizer, x, y, train_indices, 100, seed=repeat + 1,
                                      show_progress=False), 1)[0] for repeat in range(repeats)]


def stages(run, folder: Path) -> dict:
    """Each added stage of render as a function of no arguments, writing into `folder`."""
    from layerlapse.render import figures as render
    from layerlapse.measures.dynamics import probe_dynamics, test_probe_dynamics
    from layerlapse.measures.layers import measure_run

    def dynamics() -> None:
        for name, found in (("probe", probe_dynamics(run)), ("test_probe", test_probe_dynamics(run))):
            if found is not None:
                np.savez(folder / f"{name}.npz", **found.as_arrays())
                if name == "probe":
                    render.draw_data_map(found.confidence, found.variability, found.correctness,
                                         folder / "data_map.png", snapshots="the run")

    measured: dict = {}

    def measures() -> None:
        measured.update(measure_run(run) or {})

    def figures() -> None:
        if not measured:
            measures()
        if hasattr(render, "draw_cka"):
            render.draw_cka(measured, folder / "cka.png")
            render.draw_layer_measures(measured, folder / "layer_measures.png")

    return {"per-image dynamics + data map": dynamics, "layer measures": measures, "their figures": figures}


def main() -> None:
    from layerlapse.store.run import load_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-repeats", type=int, default=2, help="training epochs timed before and after each")
    args = parser.parse_args()
    epochs = training_epoch(args.train_repeats)
    rows = []
    for path in args.runs:
        run = load_run(path)
        snapshots = run.epochs_complete + 1
        with tempfile.TemporaryDirectory() as folder:
            for name, stage in stages(run, Path(folder)).items():
                median, seconds = timed(stage, args.repeats)
                rows.append((path.name, run.manifest["dataset"]["probe_size"], len(run.layers), snapshots, name,
                             median, seconds))
        run.close()
        epochs += training_epoch(args.train_repeats)
    epoch = statistics.median(epochs)
    print(f"# measures_cost · {datetime.date.today()} · {cpu_name()} · "
          f"training epoch median {epoch:.1f} s over {len(epochs)} ({', '.join(f'{s:.1f}' for s in epochs)})")
    print("| run | probe | layers | snapshots | stage | median s (all snapshots) | per snapshot s | "
          "÷ training epoch |")
    print("|---|---|---|---|---|---|---|---|")
    totals: dict[str, float] = {}
    for name, probe, layers, snapshots, stage, median, seconds in rows:
        totals[name] = totals.get(name, 0.0) + median / snapshots
        print(f"| {name} | {probe:,} | {layers} | {snapshots} | {stage} | {median:.2f} "
              f"({', '.join(f'{s:.2f}' for s in seconds)}) | {median / snapshots:.3f} | "
              f"{median / snapshots / epoch:.3f} |")
    for name, per_snapshot in totals.items():
        verdict = "within" if per_snapshot / epoch <= 0.1 else "over"
        print(f"{name}: all together {per_snapshot:.3f} s per snapshot = {per_snapshot / epoch:.3f} of a training "
              f"epoch ({verdict} the goal of 0.1)")


if __name__ == "__main__":
    main()
