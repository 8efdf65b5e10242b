"""`layerlapse watch` as a user starts it: the address first, then serving until Ctrl-C, which ends it cleanly."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from layerlapse import RunConfig

from run_helpers import recorded_and_drawn


def test_watch_prints_its_address_first_serves_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    run = recorded_and_drawn(RunConfig(dataset="digits", epochs=1, layers=("hidden",), probe=100, map_method="pca",
                                       train_subset=200), tmp_path / "run")
    # SIGINT as a terminal sends it, also where the tests run as a background job (which ignores it)
    watcher = subprocess.Popen([sys.executable, "-m", "layerlapse", "watch", str(run.path), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = watcher.stdout.readline().strip()
        found = re.fullmatch(rf"watching {re.escape(str(run.path))} at (http://127\.0\.0\.1:\d+/)", first)
        assert found, first
        with urllib.request.urlopen(found.group(1) + "api/state", timeout=30) as response:
            assert json.loads(response.read())["status"] == "complete"
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    assert err.strip().splitlines()[-1] == f"stopped watching {run.path}"
    assert "Traceback" not in err


def test_watch_refuses_a_path_that_is_no_run_folder_in_one_line(tmp_path: Path, main_here) -> None:
    (tmp_path / "notes.txt").write_text("not a run")
    result = main_here("watch", tmp_path / "notes.txt", "--port", "0")
    assert result.returncode == 2
    assert result.stderr == (f"error: {tmp_path / 'notes.txt'} is a file, not a run folder: pass the folder a run "
                          "writes to (its --out)\n")
