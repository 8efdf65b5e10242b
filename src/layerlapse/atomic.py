"""Writing files so that a reader never sees half of one: temp file in the same folder, flush, fsync, rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}{TEMP_MARK}{os.getpid()}")
    try:
        yield temp
        # the writer has closed its handle; fsync through a fresh one so the bytes are on disk before the rename
        descriptor = os.open(temp, os.O_RDWR)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_output(path) as temp:
        temp.write_bytes(data)
    return Path(path)


def remove_temp_files(folder: Path) -> None:
    """Delete temp files a killed process left behind."""
    for leftover in folder.rglob(f".*{TEMP_MARK}*"):
        leftover.unlink(missing_ok=True)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
