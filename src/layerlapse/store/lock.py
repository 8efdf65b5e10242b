"""One writer per run folder: an OS-level lock (flock) on a file inside the run.

The kernel releases a flock when the process that holds it ends, however it ends, so `kill -9` never leaves a stale
lock. Within one process the lock is shared by every RunFolder object of the same folder (they are the same writer);
another process gets a RunFolderError naming the process that holds it. Readers (`load_run`, a report open in a
browser) never take it.

The lock file holds a record of its holder: who it is (for the message a second writer gets), which folder it writes,
its process token, and the tokens of earlier writers that ended without giving the lock back. Every temp file a
writer makes carries its token (`layerlapse.store.atomic`), so the next writer knows which leftovers a killed writer of
this run made (`RunLock.leftover_tokens`) and removes only those, never a user's file that merely looks like one.

The lock file is never written through a hard link. Hard-link copies of a run (cp -al, rsync --link-dest backups)
share it, and a lock file may be a hard link to any file elsewhere: writing the record would change that file, and
one copy's writer would block the other's. A lock file with other links is replaced by a fresh one, by a rename that
changes only this folder's name, unless a writer of this very folder holds it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .atomic import is_token, process_token, temp_name
from ..errors import RunBusyError, RunFolderError
from .layout import LOCK

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer is then the user's care
    fcntl = None  # type: ignore[assignment]

_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_ATTEMPTS = 5  # a shared lock file replaced, or another writer's replacement seen, before the lock is taken
_TOKENS_KEPT = 32  # the unfinished writers a record remembers, the latest last
_RECORD_BYTES = 16_384  # a record is read up to this size; the command in it is cut to keep it well below


@dataclass
class _Held:
    descriptor: int
    users: int
    leftover_tokens: tuple[str, ...]


_HELD: dict[tuple[int, int], _Held] = {}  # (device, inode) of a lock file -> its descriptor and users here


class RunLock:
    """A held lock on one run folder; `release()` gives it back (the last user of this process unlocks)."""

    def __init__(self, key: tuple[int, int]) -> None:
        self._key: tuple[int, int] | None = key

    @property
    def leftover_tokens(self) -> tuple[str, ...]:
        """The tokens of earlier writers of this run that ended without giving the lock back (killed): the temp
        files that carry one of them are theirs, left behind."""
        held = _HELD.get(self._key) if self._key is not None else None
        return held.leftover_tokens if held is not None else ()

    def release(self) -> None:
        if self._key is None:
            return
        key, self._key = self._key, None
        held = _HELD.get(key)
        if held is None:
            return
        held.users -= 1
        if held.users <= 0:
            del _HELD[key]
            _say_released(held.descriptor)
            os.close(held.descriptor)  # closing the descriptor releases the flock

    def __del__(self) -> None:
        self.release()


def acquire(folder: Path) -> RunLock:
    """Take the write lock of the run in `folder`, or raise a one-line RunFolderError saying who holds it."""
    for _ in range(_ATTEMPTS):  # again after a lock file was replaced, by this process or another writer
        descriptor = _open_lock_file(folder)
        key = _key(descriptor)
        if key in _HELD:  # this process already writes the run: share it
            os.close(descriptor)
            _HELD[key].users += 1
            return RunLock(key)
        try:
            taken = _take(folder, descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        if taken:
            _HELD[key] = _Held(descriptor, 1, _say_holder(folder, descriptor))
            return RunLock(key)
        os.close(descriptor)
    raise RunFolderError(f"cannot lock run folder {folder}: its {LOCK} kept being replaced while this process took "
                         "it; run the command again")


def _open_lock_file(folder: Path) -> int:
    path = folder / LOCK
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | _NO_FOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RunFolderError(f"run folder {folder}: {LOCK} is a symbolic link; layerlapse never follows a link "
                                 "out of a run folder: delete the link") from None
        if error.errno in (errno.EACCES, errno.EPERM) and _has_other_links(path):
            with contextlib.suppress(OSError):  # a link to a file we may not write: enough to replace it
                return os.open(path, os.O_RDONLY | _NO_FOLLOW | os.O_CLOEXEC)
        raise RunFolderError(f"cannot write to run folder {folder} ({error.strerror or error}): writing needs a "
                             "folder you can write to; copy the run somewhere writable") from None


def _has_other_links(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.lstat(path).st_nlink > 1
    return False


def _take(folder: Path, descriptor: int) -> bool:
    """Take the flock of the lock file `descriptor` opened: True once held, on a file still in place with no other
    hard link; False where it was replaced meanwhile or had to be (open it again); the one line naming the holder
    where a writer of this folder holds it."""
    if fcntl is not None and not _try_flock(folder, descriptor):
        info = _holder_record(folder, descriptor)
        if not _in_place(folder, descriptor):
            return False
        if os.fstat(descriptor).st_nlink == 1 or not _writes_another_folder(info, folder):
            raise _busy(folder, info)
        # else its holder writes a hard-link copy of this run: this folder gets a lock file of its own
    with _replacing(folder):
        if not _in_place(folder, descriptor):
            return False
        if os.fstat(descriptor).st_nlink == 1:
            return True
        _put_fresh_lock_file(folder, _carried_record(descriptor))
        return False


def _try_flock(folder: Path, descriptor: int) -> bool:
    """Whether the flock could be taken (it is then held until `descriptor` is closed)."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise RunFolderError(f"cannot lock run folder {folder} ({error.strerror or error})") from None
    return True


def _busy(folder: Path, info: dict | None) -> RunBusyError:
    holder = _describe(info)
    return RunBusyError(f"run folder {folder} is being written by another process ({holder}): wait for it to "
                        "finish or stop it; only one process writes a run at a time", folder, holder)


def _writes_another_folder(info: dict | None, folder: Path) -> bool:
    """Whether the holder's record says it writes another folder (a hard-link copy of this run); a record that does
    not say (an older layerlapse's) may be this folder's own writer's."""
    ours, theirs = _folder_id(folder), (info or {}).get("folder")
    return ours is not None and isinstance(theirs, list) and theirs != ours


def _put_fresh_lock_file(folder: Path, record: bytes) -> None:
    """A new lock file in place of the old name, by a rename: the file the old name led to is left as it was."""
    temp = folder / temp_name(LOCK)
    try:
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.write(descriptor, record)
        finally:
            os.close(descriptor)
        os.replace(temp, folder / LOCK)
    except OSError as error:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise RunFolderError(f"cannot write to run folder {folder} ({error.strerror or error}): writing needs a "
                             "folder you can write to; copy the run somewhere writable") from None


def _carried_record(descriptor: int) -> bytes:
    """The record of a shared lock file, for its replacement: the killed writers it names made the temp files that
    were copied with the run. Anything else in the file (it may be a link to any file) is not carried."""
    info = _record(descriptor)
    return json.dumps(info).encode() if info is not None else b""


@contextlib.contextmanager
def _replacing(folder: Path) -> Iterator[None]:
    """Hold the run folder's own flock (a folder has no hard links) while the lock file is checked or replaced, so
    a replacement never lands after another writer found its lock file in place. Where a file system cannot lock
    a folder: best effort, the checks still run."""
    try:
        descriptor: int | None = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    except OSError:
        descriptor = None
    try:
        if descriptor is not None and fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        if descriptor is not None:
            os.close(descriptor)  # and with it the folder's flock


def _in_place(folder: Path, descriptor: int) -> bool:
    """Whether the lock file's name still leads to the file `descriptor` opened."""
    try:
        named = os.lstat(folder / LOCK)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == _key(descriptor)


def _folder_id(folder: Path) -> list[int] | None:
    try:
        stat = os.stat(folder)
    except OSError:
        return None
    return [stat.st_dev, stat.st_ino]


# ---- the record ------------------------------------------------------------------------------------------------------
def _key(descriptor: int) -> tuple[int, int]:
    stat = os.fstat(descriptor)
    return stat.st_dev, stat.st_ino


def _say_holder(folder: Path, descriptor: int) -> tuple[str, ...]:
    """Write who holds the lock into the lock file, for the message another writer gets (best effort), with the
    tokens of the writers before that did not give it back; returns those tokens."""
    leftovers = _unfinished_tokens(_record(descriptor))
    info = {"pid": os.getpid(), "command": _shortened(" ".join(_command()), 1000),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"), "folder": _folder_id(folder), "token": process_token(),
            "unfinished": list(leftovers)}
    _write_record(descriptor, info)
    return leftovers


def _say_released(descriptor: int) -> None:
    """Note in our record that we gave the lock back, so the next writer knows we left no temp files."""
    info = _record(descriptor)
    if info is not None and info.get("pid") == os.getpid() and info.get("token") == process_token():
        _write_record(descriptor, {**info, "released": True})


def _write_record(descriptor: int, info: dict) -> None:
    data = json.dumps(info).encode()
    try:  # over the old record, then cut to length: the file is never empty on the way (a reader waits it out)
        if os.fstat(descriptor).st_nlink == 1:  # never through a hard link
            os.pwrite(descriptor, data, 0)
            os.ftruncate(descriptor, len(data))
    except OSError:  # a full disk must not stop the writer that holds the lock
        pass


def _unfinished_tokens(info: dict | None) -> tuple[str, ...]:
    """The tokens of the writers before the record's that never gave the lock back, and the record's writer's own if
    it did not (killed); this process's own token is never among them (its temp files are in use)."""
    if info is None:
        return ()
    earlier = info.get("unfinished")
    tokens = [token for token in earlier if is_token(token)] if isinstance(earlier, list) else []
    if is_token(info.get("token")) and info.get("released") is not True:
        tokens.append(info["token"])
    mine = process_token()
    return tuple(dict.fromkeys(token for token in tokens if token != mine))[-_TOKENS_KEPT:]


def _holder_record(folder: Path, descriptor: int, wait_s: float = 2.0) -> dict | None:
    """The record of the lock's holder. The holder writes it just after taking the lock, so a record that is
    missing, half-written or names a process that has ended is not the holder's yet: wait a little for it (seen as
    races between two `--resume` started at once, where the loser named the long-gone process of the interrupted
    run, or read the record in the moment its holder had emptied it to write its own), unless the lock file is
    replaced meanwhile. None if none came."""
    deadline = time.monotonic() + wait_s
    info = _record(descriptor)
    while not _names_holder(info, descriptor) and time.monotonic() < deadline and _in_place(folder, descriptor):
        time.sleep(0.02)
        info = _record(descriptor)
    return info if _names_holder(info, descriptor) else None


def _describe(info: dict | None) -> str:
    if info is None:
        return "a process that has not said who it is"
    try:
        command = _shortened(str(info["command"]), 120)
        return f"pid {int(info['pid'])}, `{command}`, since {str(info['since'])[:19]}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not said who it is"


def _shortened(command: str, at_most: int) -> str:
    """The start and the end of a long command (where --resume or --force is) say what it is."""
    if len(command) <= at_most:
        return command
    tail = at_most // 3
    return f"{command[:at_most - tail - 3]} … {command[-tail:]}"


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
        info = json.loads(os.pread(descriptor, _RECORD_BYTES, 0).decode())
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
