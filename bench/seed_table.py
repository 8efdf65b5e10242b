"""The table `accuracy_spread.py` and `keras_reference.py` print: one row per seed, then the median and range."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections.abc import Callable, Iterable


def print_seed_table(framework: str, seeds: Iterable[int], run: Callable[[int], tuple[float, float, float]]) -> None:
    """`run(seed)` gives (test accuracy, best validation accuracy, seconds); rows are printed as they come."""
    print(f"# {datetime.date.today()} · {platform.node()} · {platform.processor() or platform.machine()} · "
          f"{os.cpu_count()} cores · {framework}")
    print("| seed | test accuracy | best validation accuracy | minutes |")
    print("|---|---|---|---|")
    accuracies = []
    for seed in seeds:
        accuracy, best, seconds = run(seed)
        accuracies.append(accuracy)
        print(f"| {seed} | {accuracy:.4f} | {best:.4f} | {seconds / 60:.1f} |", flush=True)
    print(f"\nmedian {statistics.median(accuracies):.4f}, range {min(accuracies):.4f}–{max(accuracies):.4f}")
