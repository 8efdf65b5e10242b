"""What measuring a snapshot of a layer cost, kept for the next measuring of the same run: the live page
(`layerlapse watch`) measures a growing run again at each new snapshot, and a snapshot's activations never change
once committed. The key holds the activation file's checksum from the manifest (a file rewritten is measured afresh)
and everything else the measures depend on (the sample, its labels, the seed, the CKA rows), so a value kept is the
value measuring again would give. Bounded: Gram matrices up to MEMO_BYTES, the least recently used out first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

MEMO_BYTES = 512_000_000
MAX_PAIRS = 200_000  # CKA values kept between snapshots (a few bytes each)


def digest(*arrays: np.ndarray | int) -> str:
    """One key for the sample, its labels, the seed and the CKA rows a layer is measured with."""
    hashed = hashlib.sha256()
    for array in arrays:
        hashed.update(np.ascontiguousarray(array).tobytes() if isinstance(array, np.ndarray) else str(array).encode())
        hashed.update(b"|")
    return hashed.hexdigest()


class SnapshotMemo:
    """A snapshot's measures (accuracies, rows left out, the finite CKA rows, its normalised Gram matrix) by key, and
    the CKA between two snapshots by their keys. Safe to share between threads."""

    def __init__(self, max_bytes: int = MEMO_BYTES) -> None:
        self.max_bytes = max_bytes
        self._kept: OrderedDict[tuple, tuple[Any, ...]] = OrderedDict()
        self._bytes = 0
        self._pairs: dict[tuple, float | None] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple | None) -> tuple[Any, ...] | None:
        if key is None:
            return None
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def put(self, key: tuple | None, value: tuple[Any, ...], gram: np.ndarray) -> None:
        if key is None or gram.nbytes > self.max_bytes:
            return
        with self._lock:
            if key in self._kept:
                return
            self._kept[key] = value
            self._bytes += gram.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= dropped[-1].nbytes

    def pair(self, a: tuple, b: tuple) -> tuple[bool, float | None]:
        with self._lock:
            key = (a, b) if (a, b) in self._pairs else (b, a)
            return (key in self._pairs, self._pairs.get(key))

    def put_pair(self, a: tuple, b: tuple, value: float | None) -> None:
        with self._lock:
            if len(self._pairs) >= MAX_PAIRS:
                self._pairs.clear()
            self._pairs[(a, b)] = value


MEMO = SnapshotMemo()
