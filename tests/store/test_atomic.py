from pathlib import Path

import pytest

from layerlapse.store import atomic


def test_atomic_output_replaces_the_file_only_when_the_body_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "figure.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic.atomic_output(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".figure.png.tmp-")
        temporary.write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert [item.name for item in tmp_path.iterdir()] == ["figure.png"]
    assert target.read_bytes() == b"old"
    atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [item.name for item in tmp_path.iterdir()] == ["figure.png"]


def test_remove_temp_files_clears_what_killed_writers_left_and_nothing_that_only_looks_alike(tmp_path: Path) -> None:
    (tmp_path / "deep").mkdir()
    killed, other = "0123456789abcdef", "fedcba9876543210"
    leftover = tmp_path / "deep" / f".epoch_001.npy{atomic.TEMP_MARK}{killed}"
    leftover.write_bytes(b"half")
    alike = [tmp_path / "deep" / "epoch_000.npy", tmp_path / f".notes{atomic.TEMP_MARK}123",
             tmp_path / "deep" / f".epoch_002.npy{atomic.TEMP_MARK}{other}", tmp_path / f"x{atomic.TEMP_MARK}{killed}"]
    for path in alike:
        path.write_bytes(b"a user's")
    (tmp_path / f".link{atomic.TEMP_MARK}{killed}").symlink_to(alike[0])
    atomic.remove_temp_files(tmp_path, {killed})
    assert not leftover.exists() and all(path.read_bytes() == b"a user's" for path in alike)
    assert (tmp_path / f".link{atomic.TEMP_MARK}{killed}").is_symlink()


def test_a_temp_name_carries_this_process_s_token() -> None:
    name = atomic.temp_name("figure.png")
    assert name == f".figure.png{atomic.TEMP_MARK}{atomic.process_token()}" and atomic.is_token(name[-16:])


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    data = bytes(range(256)) * 5000
    (tmp_path / "blob").write_bytes(data)
    assert atomic.sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
