"""Arrays too large to hold twice: written into a run folder's .npy files and read back a block of rows at a time.

A snapshot of a wide layer over a large probe is hundreds of MB (60,000 MNIST images × the 6,272 values of a 32×14×14
conv map: 750 MB in float16). Capture writes it batch by batch into a file preallocated inside the run folder
(`spooled_empty`), which the run then moves into place (`RunFolder.write_array`); maps convert it to float32 a block
at a time (`float32_rows`). Pages of a memory-mapped file are handed back to the kernel after each block
(`release_pages`): the data stays in the file and the page cache, and the process's memory does not grow with the
file, so its peak is what the work itself needs, whatever the number of snapshots.

Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import mmap
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .atomic import storage_error, temp_name

BLOCK_BYTES = 64 * 1024 * 1024  # rows read or written at once: large enough to stream, small beside a snapshot
SPOOL_PREFIX = ".capture-"  # then a number, ".npy" and the temp mark with the process's token

_DONT_NEED = getattr(mmap, "MADV_DONTNEED", None)  # Linux and the BSDs; elsewhere pages go when the file closes
_numbers = itertools.count()
# arrays this process preallocated in run folders, by id: (a weak reference to the array, its temp file)
_spooled: dict[int, tuple[weakref.ref, Path]] = {}


def rows_per_block(row_bytes: int, block_bytes: int | None = None) -> int:
    """How many rows of `row_bytes` each make one block (at least one)."""
    return max(1, (block_bytes or BLOCK_BYTES) // max(row_bytes, 1))


def spooled_empty(folder: Path, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised array backed by a new .npy file in `folder`, for a capture to fill a batch at a time.

    The file has a temp name (as `atomic` names them, with this process's token), so a killed run's leftovers are
    deleted when it resumes; it is deleted with the array unless `adopt` moved it into place first.
    """
    dtype, shape = np.dtype(dtype), tuple(int(size) for size in shape)
    if math.prod(shape) == 0:
        return np.empty(shape, dtype=dtype)  # nothing to spool (and an empty file cannot be mapped)
    path = Path(os.path.abspath(folder)) / temp_name(f"{SPOOL_PREFIX[1:]}{next(_numbers)}.npy")
    header = npy_header(shape, dtype)
    _reserve(path, header, len(header) + math.prod(shape) * dtype.itemsize)
    array = np.memmap(path, dtype=dtype, mode="r+", offset=len(header), shape=shape)
    key = id(array)
    _spooled[key] = (weakref.ref(array), path)
    weakref.finalize(array, _forget, key, path)
    return array


def _reserve(path: Path, header: bytes, size: int) -> None:
    """Create the file with its header and claim its disk space now: a full disk is then a one-line StorageError
    here, not a SIGBUS when a batch is written into a page the disk has no room for."""
    try:
        with open(path, "xb") as handle:
            handle.write(header)
            handle.flush()
            try:
                os.posix_fallocate(handle.fileno(), 0, size)
            except (AttributeError, OSError) as error:  # no fallocate here: a sparse file, as np.memmap makes
                if isinstance(error, OSError) and storage_error(error, path, size) is not None:
                    raise
                handle.truncate(size)
    except OSError as error:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        if (storage := storage_error(error, path, size)) is not None:
            raise storage from None
        raise


def spooled_file(array: np.ndarray, folder: Path) -> Path | None:
    """The temp file behind `array` when `spooled_empty` made this very array in `folder` and it is still there."""
    entry = _spooled.get(id(array))
    if entry is None or entry[0]() is not array:
        return None
    path = entry[1]
    if path.parent != Path(os.path.abspath(folder)) or not path.is_file() or path.is_symlink():
        return None
    return path


def adopt(array: np.ndarray, final: Path) -> None:
    """Move a spooled array's file to `final` (in the same run folder), on disk first: the array then reads the
    committed file, and is read-only, since the run lists the file with its checksum."""
    path = _spooled[id(array)][1]
    array.flush()
    descriptor = os.open(path, os.O_RDWR)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, final)
    array.flags.writeable = False
    _spooled.pop(id(array), None)


def _forget(key: int, path: Path) -> None:
    _spooled.pop(key, None)
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def release_pages(array: np.ndarray) -> None:
    """Hand the pages of the file mapping behind `array` back to the kernel (a no-op for an array in memory). The
    data is kept: a shared file mapping's written pages stay in the page cache and reach the file; a later read
    maps them in again."""
    mapping = _mapping_of(array)
    if mapping is not None and _DONT_NEED is not None:
        with contextlib.suppress(OSError, ValueError):  # a closed mapping, or a kernel without madvise
            mapping.madvise(_DONT_NEED)


def _mapping_of(array: np.ndarray) -> mmap.mmap | None:
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return base if isinstance(base, mmap.mmap) else None


def row_blocks(values: np.ndarray, block_bytes: int | None = None) -> Iterator[np.ndarray]:
    """`values` (n, ...) as consecutive blocks of whole rows; a memory-mapped file's pages are handed back after each
    block, so reading it all never holds it all."""
    n = len(values)
    rows = rows_per_block(values[0].nbytes if n else 0, block_bytes)
    for start in range(0, n, rows):
        yield values[start:start + rows]
        release_pages(values)


def float32_rows(values: np.ndarray, block_bytes: int | None = None) -> np.ndarray:
    """`values` (n, ...) as float32 rows (n, features), converted a block at a time: a memory-mapped float16
    snapshot becomes its float32 copy without the file's pages staying in memory beside it. float32 values are
    returned as they are (a view, no copy), as np.asarray would."""
    values = np.asanyarray(values)  # a memory map stays one
    n = len(values)
    flat = values.reshape(n, -1) if values.ndim != 2 else values
    if flat.dtype == np.float32:
        return np.asarray(flat)
    converted = np.empty(flat.shape, dtype=np.float32)
    start = 0
    for block in row_blocks(flat, block_bytes):
        converted[start:start + len(block)] = block
        start += len(block)
    return converted


def finite_rows(values: np.ndarray, block_bytes: int | None = None) -> np.ndarray:
    """Per row of `values` (n, features), whether all its values are finite; found a block at a time, so the test
    never makes a mask as large as the snapshot."""
    n = len(values)
    finite = np.empty(n, dtype=bool)
    start = 0
    for block in row_blocks(values.reshape(n, -1) if values.ndim != 2 else values, block_bytes):
        finite[start:start + len(block)] = np.isfinite(block).all(axis=1)
        start += len(block)
    return finite


def largest_finite_magnitude(values: np.ndarray, block_bytes: int | None = None) -> float:
    """The largest |x| over the finite values of `values` (0 when none), a block at a time."""
    largest = 0.0
    for block in row_blocks(values, block_bytes):
        finite = block[np.isfinite(block)]
        if finite.size:
            largest = max(largest, float(np.abs(finite).max()))
    return largest


def npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The header np.save writes before an array of `shape` and `dtype` (C order)."""
    import io

    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(size) for size in shape)}
    try:
        np.lib.format.write_array_header_1_0(buffer, header)
    except ValueError:  # a header too long for version 1.0, as np.save falls back
        buffer = io.BytesIO()
        np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()


def npy_chunks(values: np.ndarray, dtype: np.dtype, block_bytes: int | None = None) -> Iterator[bytes]:
    """The bytes of `values` saved as a .npy of `dtype`, header first, then a block of rows at a time: the same bytes
    as np.save(values.astype(dtype)), never all of them at once."""
    yield npy_header(values.shape, dtype)
    if values.ndim == 0:
        yield np.asarray(values, dtype=dtype).tobytes()
        return
    for block in row_blocks(values, block_bytes):
        yield np.ascontiguousarray(block, dtype=dtype).tobytes()


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as the bytes of a .npy file (never pickled)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()
