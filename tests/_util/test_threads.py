"""Tests for the thread budgets: the worker's libraries held to one thread, and, when asked, the training threads
giving the worker a core while (and only while) it maps, through the Recorder's hook on the model."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from layerlapse._util import threads
from layerlapse.capture import Recorder
from layerlapse._util.threads import (CoreShare, TrainingThreads, fit_training_threads, training_threads,
                                worker_environment)


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch):
    """A 2-core machine with torch on both, whatever this machine has; torch's threads put back afterwards."""
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def share() -> CoreShare:
    return CoreShare(multiprocessing.get_context("spawn"))


def test_the_worker_environment_is_one_thread_each_and_put_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    with worker_environment():
        assert {os.environ[name] for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                              "NUMBA_NUM_THREADS")} == {"1"}
    assert os.environ["OMP_NUM_THREADS"] == "7"
    assert "NUMBA_NUM_THREADS" not in os.environ


def test_a_worker_process_holds_every_library_to_one_thread() -> None:
    """In a fresh process started as the worker is (its environment), with every library loaded after."""
    script = ("import json, numba, numpy, torch, threadpoolctl; from layerlapse._util.threads import limit_worker_threads; "
              "limit_worker_threads(); print(json.dumps([numba.get_num_threads(), torch.get_num_threads(), "
              "sorted({pool['num_threads'] for pool in threadpoolctl.threadpool_info()})]))")
    with worker_environment():
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[1, 1, [1]]"


def test_by_default_training_keeps_its_threads_while_the_worker_maps(two_cores: None, share: CoreShare) -> None:
    """Off by default: a seeded run's weights must not depend on when the worker happens to map."""
    budget = TrainingThreads()
    budget.watch(share)
    share.flag.value = 1
    budget.fit()
    assert torch.get_num_threads() == 2
    budget.forget(share)
    assert torch.get_num_threads() == 2


def test_training_gives_a_core_while_the_worker_maps_and_takes_it_back(two_cores: None, share: CoreShare) -> None:
    budget = TrainingThreads()
    budget.yield_cores = True
    budget.watch(share)
    budget.fit()
    assert torch.get_num_threads() == 2  # the worker waits: training keeps both cores
    share.flag.value = 1
    budget.fit()
    assert torch.get_num_threads() == 1
    share.flag.value = 0
    budget.fit()
    assert torch.get_num_threads() == 2
    share.flag.value = 1
    budget.fit()
    budget.forget(share)  # the worker stopped while mapping (killed, say): the threads come back at once
    assert torch.get_num_threads() == 2
    assert budget.full is None


def test_without_a_worker_the_users_threads_are_left_alone(two_cores: None) -> None:
    torch.set_num_threads(1)
    budget = TrainingThreads()
    budget.yield_cores = True
    budget.fit()
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(("cores", "full", "expected"), [(2, 2, 1), (16, 16, 15), (16, 4, 4), (1, 1, 1), (2, 1, 1)])
def test_the_yield_leaves_the_worker_a_core_and_keeps_a_smaller_choice(monkeypatch: pytest.MonkeyPatch, cores: int,
                                                                      full: int, expected: int) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    assert TrainingThreads.yielding(full) == expected


def test_a_recorded_models_forward_pass_follows_the_worker(two_cores: None, share: CoreShare,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training_threads, "yield_cores", True)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with Recorder(model, ["1"], torch.zeros(5, 4)):
        training_threads.watch(share)
        try:
            model(torch.zeros(2, 4))
            assert torch.get_num_threads() == 2
            share.flag.value = 1
            model(torch.zeros(2, 4))
            assert torch.get_num_threads() == 1
            share.flag.value = 0
            model(torch.zeros(2, 4))
            assert torch.get_num_threads() == 2
        finally:
            training_threads.forget(share)
    share.flag.value = 1
    training_threads.watch(share)
    try:
        model(torch.zeros(2, 4))  # the Recorder is closed: its hook is gone
        assert torch.get_num_threads() == 2
    finally:
        training_threads.forget(share)


def test_the_hook_takes_any_arguments() -> None:
    assert fit_training_threads(nn.Linear(1, 1), (torch.zeros(1, 1),)) is None


def test_yielding_cores_is_a_public_switch_off_by_default() -> None:
    import layerlapse
    from layerlapse.errors import ConfigError

    assert threads.training_threads.yield_cores is False
    try:
        layerlapse.yield_cores_while_mapping()
        assert threads.training_threads.yield_cores is True
        with pytest.raises(ConfigError, match=r"^yield_cores_while_mapping takes True or False, got 'yes'$"):
            layerlapse.yield_cores_while_mapping("yes")
    finally:
        layerlapse.yield_cores_while_mapping(False)
    assert threads.training_threads.yield_cores is False
