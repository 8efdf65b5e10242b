"""One writer per run folder: an OS-level lock (flock) on a file inside the run.

The kernel releases a flock when the process that holds it ends, however it ends, so `kill -9` never leaves a stale
lock. Within one process the lock is shared by every RunFolder object of the same folder (they are the same writer);
another process gets a RunFolderError naming the process that holds it. Readers (`load_run`, a report open in a
browser) never take it.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from pathlib import Path

from .errors import RunBusyError, RunFolderError
from .layout import LOCK

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer is then the user's care
    fcntl = None  # type: ignore[assignment]

_HELD: dict[tuple[int, int], list[int]] = {}  # (device, inode) of a lock file -> [descriptor, users]


class RunLock:
    """A held lock on one run folder; `release()` gives it back (the last user of this process unlocks)."""

    def __init__(self, key: tuple[int, int]) -> None:
        self._key: tuple[int, int] | None = key

    def release(self) -> None:
        if self._key is None:
            return
        key, self._key = self._key, None
        entry = _HELD.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _HELD[key]
            os.close(entry[0])  # closing the descriptor releases the flock

    def __del__(self) -> None:
        self.release()


def acquire(folder: Path) -> RunLock:
    """Take the write lock of the run in `folder`, or raise a one-line RunFolderError saying who holds it."""
    path = folder / LOCK
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RunFolderError(f"run folder {folder}: {LOCK} is a symbolic link; layerlapse never follows a link "
                                 "out of a run folder: delete the link") from None
        raise RunFolderError(f"cannot write to run folder {folder} ({error.strerror or error}): writing needs a "
                             "folder you can write to; copy the run somewhere writable") from None
    key = _key(descriptor)
    if key in _HELD:  # this process already writes the run: share it
        os.close(descriptor)
        _HELD[key][1] += 1
        return RunLock(key)
    if fcntl is not None:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _holder(descriptor)
            os.close(descriptor)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunBusyError(f"run folder {folder} is being written by another process ({holder}): wait "
                                   "for it to finish or stop it; only one process writes a run at a time",
                                   folder, holder) from None
            raise RunFolderError(f"cannot lock run folder {folder} ({error.strerror or error})") from None
    _say_holder(descriptor)
    _HELD[key] = [descriptor, 1]
    return RunLock(key)


def _key(descriptor: int) -> tuple[int, int]:
    stat = os.fstat(descriptor)
    return stat.st_dev, stat.st_ino


def _say_holder(descriptor: int) -> None:
    """Write who holds the lock into the lock file, for the message another writer gets (best effort)."""
    text = json.dumps({"pid": os.getpid(), "command": " ".join(_command()),
                       "since": time.strftime("%Y-%m-%d %H:%M:%S")})
    data = text.encode()
    try:  # over the old record, then cut to length: the file is never empty on the way (a reader waits it out)
        os.pwrite(descriptor, data, 0)
        os.ftruncate(descriptor, len(data))
    except OSError:  # a full disk must not stop the writer that holds the lock
        pass


def _holder(descriptor: int, wait_s: float = 2.0) -> str:
    """Who holds the lock, from its record. The holder writes the record just after taking the lock, so a record
    that is missing, half-written or names a process that has ended is not the holder's yet: wait a little for it
    (seen as races between two `--resume` started at once, where the loser named the long-gone process of the
    interrupted run, or read the record in the moment its holder had emptied it to write its own)."""
    deadline = time.monotonic() + wait_s
    info = _record(descriptor)
    while not _names_holder(info, descriptor) and time.monotonic() < deadline:
        time.sleep(0.02)
        info = _record(descriptor)
    if not _names_holder(info, descriptor):
        return "a process that has not said who it is"
    try:
        command = str(info["command"])
        if len(command) > 120:  # the start and the end (where --resume or --force is) say what it is
            command = f"{command[:70]} … {command[-40:]}"
        return f"pid {int(info['pid'])}, `{command}`, since {str(info['since'])[:19]}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not said who it is"


def _names_holder(info: dict | None, descriptor: int) -> bool:
    """Whether a record names the lock's holder: a live process that, where the kernel says (Linux), holds this
    file's flock. A live process is not enough: an earlier writer's pid may belong to a process alive for another
    reason (CI's test process made the run in-process, then two `--resume` raced on it)."""
    return info is not None and _alive(info.get("pid")) and _holds_flock(info.get("pid"), descriptor) is not False


def _holds_flock(pid: object, descriptor: int) -> bool | None:
    """Whether process `pid` holds a flock on the file of `descriptor`, from /proc/locks; None where that cannot be
    read (not Linux)."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    stat = os.fstat(descriptor)
    file_id = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 4242 fd:01:123456 0 EOF"
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == file_id and fields[4] == str(pid):
            return True
    return False


def _record(descriptor: int) -> dict | None:
    try:
        info = json.loads(os.pread(descriptor, 4096, 0).decode())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _alive(pid: object) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _command() -> list[str]:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if name in ("__main__.py", "-m"):
        name = "layerlapse"
    return [name, *sys.argv[1:]]
