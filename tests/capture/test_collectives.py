"""Python objects between two real processes (gloo on CPU): broadcast, gather to rank 0 and gather to all, with
values of different sizes on each rank, and no abort at exit after the last one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch.distributed")

SCRIPT = r"""
import json, sys
import torch
from layerlapse.capture import collectives

store, rank = sys.argv[1], int(sys.argv[2])
torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
seen = {}
seen["broadcast"] = collectives.broadcast({"command": "capture", "which": "probe"} if rank == 0 else "ignored")
seen["broadcast_none"] = collectives.broadcast(None)
seen["gather"] = collectives.gather("x" * (3 + 5000 * rank))  # rank 1's is the longer: rank 0's is padded
seen["gather_short"] = collectives.gather(["y"] * (2 - rank))  # and now rank 0's is the longer
seen["all_gather"] = collectives.all_gather(("rank", rank, list(range(rank + 1))))
seen["gave_up"] = collectives.gave_up  # gloo let go of every tensor within the wait
print(json.dumps(seen))
"""


def test_two_processes_exchange_objects_of_any_size(tmp_path: Path) -> None:
    script = tmp_path / "collect.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ranks = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "store"), str(rank)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for rank in (0, 1)]
    outputs = [rank.communicate(timeout=120) for rank in ranks]
    for rank, (stdout, stderr) in zip(ranks, outputs):
        assert rank.returncode == 0 and "terminate called" not in stderr, stderr[-2000:]
    zero, one = (json.loads(stdout) for stdout, _ in outputs)
    assert zero["broadcast"] == one["broadcast"] == {"command": "capture", "which": "probe"}
    assert zero["broadcast_none"] is None and one["broadcast_none"] is None
    assert zero["gather"] == ["xxx", "x" * 5003] and one["gather"] == []
    assert zero["gather_short"] == [["y", "y"], ["y"]] and one["gather_short"] == []
    assert zero["all_gather"] == one["all_gather"] == [["rank", 0, [0]], ["rank", 1, [0, 1]]]
    assert zero["gave_up"] == one["gave_up"] == 0
