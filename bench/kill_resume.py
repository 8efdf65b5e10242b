"""Acceptance check: a run killed with SIGKILL during epoch 3 and resumed finishes whole, epochs 0-2 untouched.

    LAYERLAPSE_DATA=../shared/data python bench/kill_resume.py --out runs/mnist -- --dataset mnist --epochs 15

Starts `layerlapse run`, waits until epoch 2 is committed and epoch 3 has trained for a few seconds, kills the
process with SIGKILL, notes the SHA-256 of every file of epochs 0-2, runs the same command with --resume, and checks
that the manifest is complete and those files are byte-for-byte the same.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from layerlapse.store.atomic import sha256_file


def epochs_complete(out: Path) -> int:
    try:
        return json.loads((out / "manifest.json").read_text())["epochs_complete"]
    except (OSError, ValueError, KeyError):
        return -1


def early_files(out: Path) -> dict[str, str]:
    # the recorded data of epochs 0-2 (checkpoints are pruned to the newest by design, so they are not compared)
    names = [p for p in out.rglob("*") if p.is_file() and p.parent.name != "checkpoints"
             and ("epoch_00" in p.name and p.name[-5] in "012" or p.parent.name == "probe")]
    return {p.relative_to(out).as_posix(): sha256_file(p) for p in sorted(names)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds-into-epoch-3", type=float, default=10.0)
    parser.add_argument("run_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [sys.executable, "-m", "layerlapse", "run", "--out", str(args.out), "--quiet",
               *[a for a in args.run_args if a != "--"]]
    started = time.time()
    process = subprocess.Popen([*command, "--force"] if args.out.exists() else command)
    while epochs_complete(args.out) < 2:
        if process.poll() is not None:
            sys.exit(f"the run ended (code {process.returncode}) before epoch 2")
        time.sleep(0.2)
    time.sleep(args.seconds_into_epoch_3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = epochs_complete(args.out)
    before = early_files(args.out)
    print(f"killed after {time.time() - started:.0f} s with epochs_complete={killed_at}; {len(before)} files of "
          "epochs 0-2 noted")
    subprocess.run([*command, "--resume"], check=True)
    manifest = json.loads((args.out / "manifest.json").read_text())
    after = early_files(args.out)
    changed = [name for name in before if after.get(name) != before[name]]
    print(f"resumed: status={manifest['status']} epochs_complete={manifest['epochs_complete']} "
          f"test={manifest['test']}; files of epochs 0-2 changed: {changed or 'none'}")
    sys.exit(0 if manifest["status"] == "complete" and not changed and killed_at == 2 else 1)


if __name__ == "__main__":
    main()
