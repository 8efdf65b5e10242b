"""What a run folder's safety checks cost: opening with and without checksums, the header checks a redraw makes
before it maps anything, and taking and giving back the writer's lock.

    python bench/run_checks.py RUN_DIR [--repeats 7]

Each figure is a median of --repeats, in this process, after one warm-up (so the files are in the page cache, as
they are right after a run). The run folder is only read, and its lock taken and given back.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time
from collections.abc import Callable

from layerlapse.store import layout
from layerlapse.store.run import RunFolder


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def header_checks(run: RunFolder) -> None:
    for layer in run.layers:
        for epoch in range(run.epochs_complete + 1):
            run.array_header(layout.activations(layer, epoch))


def lock_round_trip(run: RunFolder) -> None:
    with run.writing():
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    run = RunFolder.open(args.run_dir)
    n_files = len(run.manifest["files"])
    size = sum(run.local(relpath).stat().st_size for relpath in run.manifest["files"])
    print(f"{datetime.date.today()} · {platform.processor() or platform.machine()} · {args.run_dir}: {n_files} "
          f"listed files, {size / 1e6:.0f} MB")
    rows = [
        ("open, manifest checks only", lambda: RunFolder.open(args.run_dir, verify=False)),
        ("open with every checksum (load_run)", lambda: RunFolder.open(args.run_dir, verify=True)),
        ("header checks of every activation file", lambda: header_checks(run)),
        ("lock taken and given back", lambda: lock_round_trip(run)),
    ]
    for name, action in rows:
        print(f"{name:<42} {median_seconds(action, args.repeats) * 1e3:10.2f} ms")


if __name__ == "__main__":
    main()
