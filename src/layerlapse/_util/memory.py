"""Keep freed memory in the process instead of handing it back to the kernel after every batch.

glibc's malloc serves large blocks with mmap and gives the top of its heap back to the kernel when much of it is
free. A forward pass of the reference network at batch 250 allocates and frees tensors of 6-25 MB per layer, so every
batch received fresh pages and page-faulted on first touch. Measured by bench/memory.py (2026-12-01, 2 cores, fresh
processes): capturing 10,000 probe images took 2.55 s with 749,000 minor page faults, and 1.26 s with none once
freed memory stays in the heap; the validation pass 2.94 s against 1.73 s; the first training epoch 24.2 s against
22.0 s; a warm aligned map of 60,000 points 7.8 s against 6.5 s (NN-descent's and UMAP's arrays fault the same
way). Results are the same, bit for bit. The cost: the process keeps up to its peak of freed memory (at most
`_TRIM_THRESHOLD` above what it uses) instead of returning it at once.

Process-wide, so it is applied once, where layerlapse's own work starts (`record_run`, `Recorder`, `EpochMapper`, so
also in the mapping worker); set `LAYERLAPSE_KEEP_FREED_MEMORY=0` to leave the C library's defaults alone. Elsewhere
than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest: blocks up to 32 MB come from the heap and stay there
_TRIM_THRESHOLD = 1024 * 1024 * 1024  # the heap's top is given back only when more than 1 GB of it is free

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Once per process: have glibc keep freed blocks for the next batch. True when the setting is in force."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get("LAYERLAPSE_KEEP_FREED_MEMORY", "1") == "0" or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False
