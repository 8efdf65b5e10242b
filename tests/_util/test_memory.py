"""Tests for keeping freed memory in the process: the setting is applied on glibc, can be turned off, and removes
the page faults a snapshot otherwise takes on every batch. Each case runs in a fresh process, since the setting is
process-wide."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the setting is glibc's")

SNAPSHOT_FAULTS = """
import resource
import torch
from layerlapse.capture import Recorder
from layerlapse._util.memory import keep_freed_memory
from layerlapse.reference.models import build_model
from layerlapse.reference.train import prepare_model

model = prepare_model(build_model((28, 28), 10), torch.device("cpu"))
probe = torch.rand(2000, 1, 28, 28)
with Recorder(model, ["hidden"], probe) as recorder:
    recorder.run_probe(probe)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    recorder.run_probe(probe)
    print(keep_freed_memory(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def snapshot_in_a_fresh_process(keep: str) -> tuple[bool, int]:
    """(setting in force, minor page faults of a second 2,000-image snapshot) with LAYERLAPSE_KEEP_FREED_MEMORY=keep."""
    env = {**os.environ, "LAYERLAPSE_KEEP_FREED_MEMORY": keep}
    out = subprocess.run([sys.executable, "-c", SNAPSHOT_FAULTS], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


def test_a_recorder_keeps_freed_memory_so_a_snapshot_does_not_page_fault_on_every_batch() -> None:
    kept_applied, kept_faults = snapshot_in_a_fresh_process("1")
    default_applied, default_faults = snapshot_in_a_fresh_process("0")
    assert kept_applied and not default_applied
    # measured: 0 to about 6,500 (now and then one batch's 27 MB tensor lands on fresh pages) against 31,000 to
    # 120,000 (every batch's tensors on fresh pages; how many depends on the machine and glibc's own trimming, so the
    # floor is the scale of one snapshot's tensors, 40 MB of pages, and the claim is the ratio)
    assert kept_faults < default_faults / 10 and default_faults > 10_000


def test_keep_freed_memory_is_applied_once_and_says_so() -> None:
    code = ("from layerlapse._util import memory\n"
            "first = memory.keep_freed_memory()\n"
            "memory._apply = lambda: (_ for _ in ()).throw(AssertionError('applied twice'))\n"
            "print(first, memory.keep_freed_memory())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "LAYERLAPSE_KEEP_FREED_MEMORY": "1"})
    assert out.stdout.split() == ["True", "True"]
