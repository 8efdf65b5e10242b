"""The one-writer lock: shared within a process, refused to another, freed by the kernel when its holder dies."""

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from layerlapse.store import lock
from layerlapse.errors import RunFolderError

HOLD = """
import sys, time
from pathlib import Path
from layerlapse.store import lock
held = lock.acquire(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(600)
"""


def test_a_process_shares_its_own_lock_and_frees_it_with_the_last_user(tmp_path: Path) -> None:
    held_before = set(lock._HELD)  # runs of earlier tests that the garbage collector has not closed yet
    first, second = lock.acquire(tmp_path), lock.acquire(tmp_path)
    first.release()
    first.release()  # twice is once
    assert len(set(lock._HELD) - held_before) == 1
    second.release()
    assert set(lock._HELD) - held_before == set()


def test_another_process_is_refused_with_the_holder_then_takes_it_once_the_holder_is_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match=rf"is being written by another process \(pid {holder.pid}, "
                                                 r"`.*`, since .*\): wait for it to finish or stop it"):
            lock.acquire(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock.acquire(tmp_path).release()


def test_a_lock_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("theirs")
    run = tmp_path / "run"
    run.mkdir()
    (run / lock.LOCK).symlink_to(target)
    with pytest.raises(RunFolderError, match=r"\.layerlapse-lock is a symbolic link"):
        lock.acquire(run)
    assert target.read_text() == "theirs"


HOLD_THEN_SAY = """
import fcntl, os, sys, time
from pathlib import Path
from layerlapse.store import lock
descriptor = os.open(Path(sys.argv[1]) / lock.LOCK, os.O_RDWR)
fcntl.flock(descriptor, fcntl.LOCK_EX)  # the lock taken, its record not written yet: the moment of the race
print("locked", flush=True)
time.sleep(0.3)
lock._say_holder(Path(sys.argv[1]), descriptor)
time.sleep(600)
"""


def refused_beside(folder: Path, script: str, pattern: str) -> None:
    """Run `script` (it takes the lock of `folder`, prints "locked", then holds it), then take the lock here: refused
    with a message matching `pattern`, where "{pid}" stands for the holder's pid."""
    holder = subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError, match=pattern.replace("{pid}", str(holder.pid))):
            lock.acquire(folder)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_record_left_by_an_ended_writer_is_not_taken_for_the_new_holder(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = int(ended.stdout)  # a process that has ended, as the interrupted run's writer had
    (tmp_path / lock.LOCK).write_text(f'{{"pid": {stale}, "command": "layerlapse", "since": "2026-01-01 00:00:00"}}')
    refused_beside(tmp_path, HOLD_THEN_SAY, r"by another process \(pid {pid}, ")


def test_a_record_naming_a_live_process_that_does_not_hold_the_lock_is_not_taken_for_the_holder(
        tmp_path: Path) -> None:
    # CI's race: the run was made in the test process, whose record stayed; two `--resume` then raced on it, and the
    # loser named the (live) test process before the winner had written its own record
    (tmp_path / lock.LOCK).write_text(f'{{"pid": {os.getpid()}, "command": "layerlapse", "since": "2026-01-01"}}')
    refused_beside(tmp_path, HOLD_THEN_SAY, r"by another process \(pid {pid}, ")


def test_the_kernel_says_which_process_holds_a_flock(tmp_path: Path) -> None:
    descriptor = os.open(tmp_path / "file", os.O_RDWR | os.O_CREAT)
    try:
        if lock._holds_flock(os.getpid(), descriptor) is None:
            pytest.skip("/proc/locks cannot be read here")
        assert lock._holds_flock(os.getpid(), descriptor) is False
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        assert lock._holds_flock(os.getpid(), descriptor) is True
        assert lock._holds_flock(os.getpid() + 1, descriptor) is False
    finally:
        os.close(descriptor)


def test_a_lock_file_its_holder_has_not_written_yet_is_waited_for(tmp_path: Path) -> None:
    (tmp_path / lock.LOCK).touch()  # a fresh lock file, as the first of two `--resume` started at once creates it
    refused_beside(tmp_path, HOLD_THEN_SAY, r"by another process \(pid {pid}, ")


def test_a_holder_that_never_says_who_it_is_is_reported_after_the_wait(tmp_path: Path) -> None:
    (tmp_path / lock.LOCK).touch()
    silent = HOLD_THEN_SAY.replace("lock._say_holder(Path(sys.argv[1]), descriptor)", "pass")
    refused_beside(tmp_path, silent, r"by another process \(a process that has not said who it is\): "
                                     r"wait for it to finish or stop it")


KILLED = """
import os, signal, sys
from pathlib import Path
from layerlapse.store import atomic
from layerlapse.store import lock
held = lock.acquire(Path(sys.argv[1]))
print(atomic.process_token(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_that_gives_the_lock_back_leaves_no_token_and_a_killed_one_does(tmp_path: Path) -> None:
    from layerlapse.store import atomic

    lock.acquire(tmp_path).release()
    record = json.loads((tmp_path / lock.LOCK).read_text())
    assert record["token"] == atomic.process_token() and record["released"] is True
    killed = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    held = lock.acquire(tmp_path)
    assert held.leftover_tokens == (killed.stdout.strip(),)  # its temp files are the next writer's to remove
    held.release()
    assert lock.acquire(tmp_path).leftover_tokens == (killed.stdout.strip(),)  # the record keeps it for the next


def test_a_lock_file_hard_linked_elsewhere_is_replaced_unless_this_folder_s_writer_holds_it(tmp_path: Path) -> None:
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere.txt"
    run.mkdir()
    elsewhere.write_text("someone's file")
    os.link(elsewhere, run / lock.LOCK)
    lock.acquire(run).release()
    assert elsewhere.read_text() == "someone's file" and (run / lock.LOCK).stat().st_nlink == 1
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        os.link(run / lock.LOCK, tmp_path / "backup-lock")  # a hard-link backup taken while the run is written
        with pytest.raises(RunFolderError, match=rf"is being written by another process \(pid {holder.pid}, "):
            lock.acquire(run)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
