from pathlib import Path

import pytest

from layerlapse import atomic


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


def test_remove_temp_files_clears_what_a_killed_writer_left(tmp_path: Path) -> None:
    (tmp_path / "deep").mkdir()
    leftover = tmp_path / "deep" / f".epoch_001.npy{atomic.TEMP_MARK}123"
    leftover.write_bytes(b"half")
    kept = tmp_path / "deep" / "epoch_000.npy"
    kept.write_bytes(b"whole")
    atomic.remove_temp_files(tmp_path)
    assert not leftover.exists() and kept.exists()


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    data = bytes(range(256)) * 5000
    (tmp_path / "blob").write_bytes(data)
    assert atomic.sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
