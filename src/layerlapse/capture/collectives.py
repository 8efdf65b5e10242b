"""Python objects between the processes of a distributed fit: broadcast from rank 0, gather to rank 0, gather to all.

torch.distributed's own object collectives (`broadcast_object_list` and the like) were used before, and a two-process
fit (the test suite's) then aborted at exit in 7 of 20 runs ("terminate called without an active exception"; rank
0's exit code -6 in 2 of them). gdb showed why: gloo's worker thread lets go of a finished collective
(`ProcessGroupGloo::runLoop` → `~AsyncBroadcastWork`) a moment after the caller was told it is done, and letting go
of a tensor that has a Python object lowers that object's count (`decref_pyobject`), which needs the GIL. When the
caller has dropped its own handle on the work by then, as torch's object collectives do on return, that happens on
the worker thread, and once the interpreter is exiting the thread cannot have the GIL and aborts the process. The
fit's last collective is the callback's own, just before the script ends, so it lost that race often.

Here each collective is waited for, and then so is gloo's worker thread: while C++ still holds a tensor, its Python
object counts one reference more, so the caller sleeps (giving up the GIL) until the count is back, at most
`RELEASE_WAIT_S`. Measured in a two-process loop of 300 broadcasts: the worker still held the tensor when `wait()`
returned in 68-91 of them, and let go within 0.7 ms. `bench/ddp_exit.py`, fits alternating with torch's object
collectives: none of 35 aborted, against 4 of 35 (docs/benchmarks.md).
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

RELEASE_WAIT_S = 2.0  # at most, for gloo's worker thread to let go of a collective's tensors (it takes microseconds)
gave_up = 0  # collectives whose tensors were still held after that wait


def broadcast(value: Any) -> Any:
    """Rank 0's `value` on every rank (the argument is ignored elsewhere)."""
    device, rank = _device(), torch.distributed.get_rank()
    data = _encode(value, device) if rank == 0 else None
    size = torch.tensor([0 if data is None else data.numel()], dtype=torch.int64, device=device)
    _run(lambda: torch.distributed.broadcast(size, src=0, async_op=True), size)
    if data is None:
        data = torch.empty(int(size.item()), dtype=torch.uint8, device=device)
    _run(lambda: torch.distributed.broadcast(data, src=0, async_op=True), data)
    return value if rank == 0 else _decode(data)


def gather(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order, on rank 0 ([] elsewhere)."""
    data, sizes = _same_size(value)
    received = [torch.empty_like(data) for _ in sizes] if torch.distributed.get_rank() == 0 else None
    _run(lambda: torch.distributed.gather(data, received, dst=0, async_op=True), data, *(received or []))
    return [] if received is None else [_decode(part[:size]) for part, size in zip(received, _numbers(sizes))]


def all_gather(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank."""
    data, sizes = _same_size(value)
    received = [torch.empty_like(data) for _ in sizes]
    _run(lambda: torch.distributed.all_gather(received, data, async_op=True), data, *received)
    return [_decode(part[:size]) for part, size in zip(received, _numbers(sizes))]


def _same_size(value: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """This rank's `value` encoded and padded to the longest rank's length (gather and all_gather send tensors of one
    size), and every rank's length."""
    device = _device()
    data = _encode(value, device)
    size = torch.tensor([data.numel()], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(torch.distributed.get_world_size())]
    _run(lambda: torch.distributed.all_gather(sizes, size, async_op=True), size, *sizes)
    padded = torch.zeros(max(_numbers(sizes)), dtype=torch.uint8, device=device)
    padded[:data.numel()] = data
    return padded, sizes


def _run(start: Callable[[], Any], *tensors: torch.Tensor) -> None:
    """Start a collective on `tensors`, wait for it, then wait for gloo's worker thread to let go of them (see the
    module's docstring)."""
    global gave_up
    before = _references(tensors)
    work = start()
    work.wait()
    del work  # the worker thread's may now be the last hold on the work
    if tensors and tensors[0].device.type == "cpu" and not _let_go(tensors, before):  # gloo (NCCL: not measured)
        gave_up += 1


def _let_go(tensors: tuple[torch.Tensor, ...], before: list[int]) -> bool:
    """Whether C++ let go of `tensors` within RELEASE_WAIT_S: while it holds one, its Python object counts one
    reference more than `before`."""
    deadline = time.monotonic() + RELEASE_WAIT_S
    while any(now > then for now, then in zip(_references(tensors), before)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)  # gives the worker thread the GIL it needs to let go
    return True


def _references(tensors: tuple[torch.Tensor, ...]) -> list[int]:
    """Each tensor's Python reference count (always taken here, so that two counts compare)."""
    return [sys.getrefcount(tensor) for tensor in tensors]


def _encode(value: Any, device: torch.device) -> torch.Tensor:
    # a copy that owns its memory: a tensor over the pickle's buffer would hold a Python object too
    return torch.frombuffer(bytearray(pickle.dumps(value)), dtype=torch.uint8).to(device, copy=True)


def _decode(data: torch.Tensor) -> Any:
    # pickle, as torch's object collectives use: bytes from the other ranks of the user's own fit, never a file
    return pickle.loads(data.cpu().numpy().tobytes())


def _numbers(sizes: list[torch.Tensor]) -> list[int]:
    return [int(size.item()) for size in sizes]


def _device() -> torch.device:
    """The device torch's own object collectives use for the default group: the CPU for gloo, the current GPU for
    NCCL."""
    kind = getattr(torch.distributed.distributed_c10d, "_get_object_coll_device", lambda: "cpu")()
    return torch.device(kind)
