"""The text demo (`layerlapse demo --text`) timed end to end, then what it recorded: the evaluation accuracy at each
recorded step, and per recorded layer the layer measures over the steps (k-NN and linear-probe accuracy of the
probe's categories, linear CKA to the previous snapshot) and the CKA between the first and the last snapshot — how
far each layer moved over the whole fine-tuning (1 = not at all).

    NUMBA_CACHE_DIR=.cache/numba python bench/text_demo.py --out runs/text

The demo runs as a user runs it, `layerlapse demo --text --quiet` in a fresh process, so the wall time counts the
imports, the pre-training, the fine-tuning and the mapping and drawing of both runs. Run it on a quiet machine: two
trainings at once on 2 cores slow each other far more than 2x.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

LAYERLAPSE = [sys.executable, "-m", "layerlapse"]
MEASURES = ("knn_accuracy", "linear_probe_accuracy", "cka_to_previous")


def machine() -> str:
    """The CPU's model and its widest vector instructions, from /proc/cpuinfo where there is one."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    vectors = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{model}, {vectors}, {os.cpu_count()} CPUs"


def rounded(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def report(out: Path) -> None:
    """The accuracy at each recorded step, then the layer measures over the steps and first-to-last CKA."""
    manifest = json.loads((out / "manifest.json").read_text())
    steps = [snapshot["step"] for snapshot in manifest["snapshots"]]
    accuracy = {row["step"]: row.get("val_acc") for row in manifest["history"]}
    print("\nstep  " + "  ".join(f"{step:>5}" for step in steps))
    print("acc   " + "  ".join(f"{rounded(accuracy.get(step)):>5}" for step in steps))
    if manifest.get("test"):
        print(f"evaluation accuracy after training: {manifest['test']['accuracy']:.4f} "
              f"({manifest['test']['size']} quotations)")
    print(f"masked-LM accuracy after pre-training: {manifest['training'].get('masked_lm_accuracy')}")
    measured = json.loads((out / "dynamics" / "layers.json").read_text())
    for layer, values in measured["layers"].items():
        print(f"\n{layer} ({manifest['layer_info'][layer]['caption']})")
        for name in MEASURES:
            print(f"  {name:<22}" + "  ".join(f"{rounded(value):>5}" for value in values[name]))
        print(f"  CKA first → last      {rounded(values['cka'][0][-1])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/text"))
    parser.add_argument("--only-report", action="store_true", help="read a run the demo already wrote")
    args = parser.parse_args()
    print(f"{datetime.date.today()} · {machine()} · load average {os.getloadavg()[0]:.2f} before")
    if not args.only_report:
        started = time.perf_counter()
        result = subprocess.run([*LAYERLAPSE, "demo", "--text", "--quiet", "--out", str(args.out)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"the demo failed:\n{result.stderr[-3000:]}")
        print(f"layerlapse demo --text: {time.perf_counter() - started:.0f} s wall, load average "
              f"{os.getloadavg()[0]:.2f} after")
    report(args.out)


if __name__ == "__main__":
    main()
