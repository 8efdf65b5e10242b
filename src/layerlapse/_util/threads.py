"""Thread budgets: who gets the cores while a run trains in one process and maps in another.

The mapping worker keeps to one thread: its libraries are told so before they load, and held to it after (numba's
threads were not limited before). The training process keeps the threads torch has.

It can also give a core up while, and only while, the worker maps (`layerlapse.yield_cores_while_mapping()` sets `training_threads.yield_cores`): the
worker raises a flag around each frame, and a forward pre-hook that the Recorder puts on the model sets torch's
threads before each batch, so every loop that records through it follows (the built-in one, your own, Lightning,
Hugging Face; Keras on torch per batch). Measured on 2 cores (AVX-512, `bench/core_share.py`): beside a worker
mapping back to back, an epoch with two training threads took 64-67 s against 21-23 s alone (OpenMP's threads meet
at every operator, and one of them has no core), with one thread 34-36 s. In a whole run (`bench/alongside.py
--schedules`) it took the recorded epochs' training from 29.9 s to 25.3 s but the epoch's wall time only from 40.6 s
to 39.5 s. It is off by default because it costs what a seeded run promises: torch's sums split across threads
differently with one thread than with two, so when the flag happens to be up changes the trained weights in their
last bits, and a run resumed after a kill no longer equals the uninterrupted one.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

WORKER_THREADS = 1  # the seeded UMAP layout runs on one thread anyway
# what each library in the worker reads, when it loads, for its number of threads
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or `taskset` may narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def worker_environment() -> Iterator[None]:
    """While a worker process starts: the variables its libraries read for their thread counts, then put back."""
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update({name: str(WORKER_THREADS) for name in _THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def limit_worker_threads() -> None:
    """In the worker: hold the libraries already loaded to its budget too (BLAS, OpenMP, numba, torch)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(WORKER_THREADS)
    import numba

    numba.set_num_threads(min(WORKER_THREADS, numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:  # the torchdr backend's torch
        sys.modules["torch"].set_num_threads(WORKER_THREADS)


class CoreShare:
    """A flag in shared memory that the worker raises while it maps, which the training process reads."""

    def __init__(self, context: Any) -> None:
        self.flag = context.Value("b", 0, lock=False)  # one byte, written by one process only

    @contextlib.contextmanager
    def mapping(self) -> Iterator[None]:
        """In the worker, around each epoch's maps."""
        self.flag.value = 1
        try:
            yield
        finally:
            self.flag.value = 0

    @property
    def busy(self) -> bool:
        return bool(self.flag.value)


class TrainingThreads:
    """The training process's side: with `yield_cores`, its threads as many as it had while no worker maps and one
    core fewer while one does. Called on the training thread (OpenMP's thread count belongs to the thread that sets
    it)."""

    def __init__(self) -> None:
        self.yield_cores = False  # off: a seeded run's weights would depend on the worker's timing (see above)
        self.shares: list[CoreShare] = []
        self.full: int | None = None  # the training threads when the first worker started
        self.current: int | None = None

    def watch(self, share: CoreShare) -> None:
        self.shares.append(share)

    def forget(self, share: CoreShare) -> None:
        if share in self.shares:
            self.shares.remove(share)
        if not self.shares:
            self.fit()  # back to the full count now; a later forward pass might never come

    def fit(self) -> None:
        """Set the training threads for whether a worker maps right now; cheap when nothing changes."""
        if self.full is None and not (self.shares and self.yield_cores):
            return  # nothing to yield to, or not asked to: the threads are the user's
        torch = sys.modules.get("torch")  # a process that trains has it; this module never loads it
        if torch is None:
            return
        if self.full is None:
            self.full = self.current = torch.get_num_threads()
        busy = self.yield_cores and any(share.busy for share in self.shares)
        wanted = self.yielding(self.full) if busy else self.full
        if wanted != self.current:
            torch.set_num_threads(wanted)
            self.current = wanted
        if not self.shares:
            self.full = self.current = None

    @staticmethod
    def yielding(full: int) -> int:
        """Training threads while the worker maps: what leaves the worker its cores, at least one; fewer than the
        user's own choice only when that choice leaves the worker none."""
        return max(1, min(full, available_cores() - WORKER_THREADS))


training_threads = TrainingThreads()


def fit_training_threads(*_: Any) -> None:
    """A forward pre-hook: before each forward pass on the training thread (its arguments are ignored)."""
    training_threads.fit()
