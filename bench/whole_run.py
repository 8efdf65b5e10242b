"""A whole run against plain training and against the article's pipeline: three whole processes, one after the
other, on this machine in this session.

1. training only: the reference recipe, the same epochs, no pictures (`bench/accuracy_spread.py --seeds 0`);
2. layerlapse: `layerlapse run --probe all --epochs N` (every training image mapped at every epoch, the frames,
   GIF, video, figures and report);
3. the article's pipeline in Keras (`bench/article_pipeline.py`: per epoch predict, a fresh UMAP and a scatter plot
   of all 60,000 images, then the GIF, the test set and the figures), in the environment that script names.

    LAYERLAPSE_DATA=../shared/data python bench/whole_run.py --epochs 15 --keras-python .venv-keras/bin/python

Prints each process's wall seconds and the two ratios the issue sets goals for (layerlapse ≤ 1.5× training only,
and ≥ 3× faster than the article's pipeline), with the CPU's instruction set beside them. Each process's output is
kept in `--out` (a temporary folder by default). Run it on a quiet machine: the three take about an hour at 15
epochs on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TRAINING, OURS, ARTICLE = "training only", "layerlapse run --probe all", "the article's pipeline (Keras)"

sys.path.insert(0, str(BENCH))
from maps import cpu_flags  # noqa: E402  (beside this script)


def timed(name: str, command: list[str], log: Path) -> float:
    """Wall seconds of `command`, its output in `log`; a failure ends the bench with the log's last lines."""
    print(f"{name}: {' '.join(command)}", flush=True)
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=BENCH)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{name} failed (exit code {done.returncode}); its output ends:\n"
                 + "\n".join(log.read_text().splitlines()[-15:]))
    print(f"  {seconds:.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--keras-python", help="the Python of bench/article_pipeline.py's environment "
                                               "(without it, the article's pipeline is not run)")
    parser.add_argument("--out", type=Path, help="where the runs and their outputs go (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        epochs = str(args.epochs)
        seconds = {TRAINING: timed("training only", [sys.executable, "accuracy_spread.py", "--seeds", "0",
                                                     "--epochs", epochs], out / "training.log")}
        seconds[OURS] = timed(
            "layerlapse", [sys.executable, "-m", "layerlapse", "run", "--probe", "all", "--epochs", epochs,
                           "--out", str(out / "run"), "--force"], out / "layerlapse.log")
        if args.keras_python:
            seconds[ARTICLE] = timed(
                "article", [args.keras_python, "article_pipeline.py", "--epochs", epochs, "--out",
                            str(out / "article")], out / "article.log")
            print((out / "article.log").read_text().splitlines()[-1])
    print(f"\n# {datetime.date.today()} · {platform.node()} · {cpu_flags()} · {args.epochs} epochs, whole processes")
    print("| process | wall seconds |")
    print("|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.0f} |")
    print(f"\nlayerlapse / training only: {seconds[OURS] / seconds[TRAINING]:.2f}× (goal ≤ 1.5×)")
    if ARTICLE in seconds:
        print(f"the article's pipeline / layerlapse: {seconds[ARTICLE] / seconds[OURS]:.2f}× (goal ≥ 3×)")


if __name__ == "__main__":
    main()
