"""Writing files so that a reader never sees half of one: temp file in the same folder, flush, fsync, rename.

A temp file is named `.<final name>.tmp-<token>`, where the token is this process's own random one (`process_token`).
The writer of a run records its token in the run's lock file (`layerlapse.store.lock`), so the next writer can tell the
temp files a killed writer left from a user's files that merely look like them: it removes only names that end in
a token it read there (`remove_temp_files`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Collection, Iterator
from pathlib import Path

from ..errors import RunFolderError, StorageError

TEMP_MARK = ".tmp-"
TOKEN_PATTERN = "[0-9a-f]{16}"
_TEMP_NAME = re.compile(rf"\..+{re.escape(TEMP_MARK)}({TOKEN_PATTERN})")
_token: tuple[int, str] | None = None  # (pid, token): a forked child draws its own


def process_token() -> str:
    """This process's random token (16 hex digits), which every temp file it makes carries."""
    global _token
    if _token is None or _token[0] != os.getpid():
        _token = (os.getpid(), secrets.token_hex(8))
    return _token[1]


def is_token(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(TOKEN_PATTERN, value) is not None


def temp_name(final_name: str) -> str:
    """The name of this process's temp file for `final_name`, in the same folder."""
    return f".{final_name}{TEMP_MARK}{process_token()}"


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, size: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed.

    A full or read-only disk becomes a one-line StorageError naming the folder (and `size`, the bytes to write,
    where the caller knows it); the file that was there before stays whole.
    """
    final = Path(path)
    temp = final.with_name(temp_name(final.name))
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        yield temp
        # the writer has closed its handle; fsync through a fresh one so the bytes are on disk before the rename
        descriptor = os.open(temp, os.O_RDWR)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temp, final)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        if isinstance(error, OSError) and (storage := storage_error(error, final, size)) is not None:
            raise storage from None
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_output(path, size=len(data)) as temp:
        temp.write_bytes(data)
    return Path(path)


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def storage_error(error: OSError, path: Path, size: int | None = None) -> StorageError | None:
    """The one line for a write the disk refused (full, read-only, no permission); None for other errors."""
    folder = path.parent
    if error.errno in DISK_FULL:
        amounts = [] if size is None else [f"{_megabytes(size)} needed"]
        with contextlib.suppress(OSError):
            amounts.append(f"{_megabytes(shutil.disk_usage(_existing(folder)).free)} free")
        needed = f" ({', '.join(amounts)})" if amounts else ""
        return StorageError(f"no space left on the disk holding {folder} while writing {path.name}{needed}: free "
                            "some space there and run the command again (everything committed before stays "
                            "readable; a run continues with --resume)")
    if error.errno in NOT_WRITABLE:
        why = "is on a read-only file system" if error.errno == errno.EROFS else "cannot be written by this user"
        return StorageError(f"{folder} {why}, so {path.name} cannot be written: make it writable, or copy the run "
                            "folder somewhere writable and run the command there")
    return None


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 100_000 else f"{n_bytes:,} bytes"


def remove_temp_files(folder: Path, tokens: Collection[str]) -> None:
    """Delete the temp files that killed writers with these `tokens` left in `folder`; a name that only looks like
    one (another token, or none) is a user's file and stays. Links are neither followed nor removed."""
    if not tokens:
        return
    for root, _, files in os.walk(folder):
        for name in files:
            made = _TEMP_NAME.fullmatch(name)
            path = Path(root) / name
            if made is not None and made.group(1) in tokens and not path.is_symlink():
                path.unlink(missing_ok=True)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_writable_folder(folder: Path) -> None:
    """Make `folder` (and its parents) and prove a file can be written in it: a one-line RunFolderError, or the
    storage error of a full or read-only disk, rather than a failure halfway through a run."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        if (storage := storage_error(error, folder / "manifest.json")) is not None and error.errno != errno.EACCES:
            raise storage from None
        raise RunFolderError(f"cannot write to {folder} ({error.strerror or error}): choose another --out "
                             "or fix its permissions") from None
