"""Tests for layerlapse.reference.data: IDX reading and its error messages, where files are found, download, digits, real MNIST.

Every test runs offline: an autouse fixture points the mirrors at a closed local port, the cache at tmp_path and
removes LAYERLAPSE_DATA. Downloads are tested for real against an http.server on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import stat
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from layerlapse.reference import data
from layerlapse.reference.data import IDX_FILES, Dataset, load_dataset, read_idx
from layerlapse.errors import DatasetError

REAL_DATA = os.environ.get("LAYERLAPSE_DATA")  # read before the sandbox fixture removes it
REAL_SOURCES = dict(data.IDX_SOURCES)  # before the sandbox fixture replaces mirrors and system folders
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: connection refused at once, never the internet
IMAGE_SHAPE = (4, 5)  # not square, so a transposed reader would fail


# --- helpers that write small IDX files -----------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_file(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def synthetic_split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, *IMAGE_SHAPE), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    return images, labels


def synthetic_files(n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict[str, bytes]:
    """The four decompressed IDX files of a tiny dataset, by standard name."""
    x_train, y_train = synthetic_split(n_train, seed)
    x_test, y_test = synthetic_split(n_test, seed + 1)
    arrays = (x_train, y_train, x_test, y_test)
    return {stem: idx_bytes(array) for stem, array in zip(IDX_FILES, arrays, strict=True)}


def write_dataset(folder: Path, gz: bool = True, **sizes: int) -> dict[str, bytes]:
    files = synthetic_files(**sizes)
    for stem, payload in files.items():
        write_file(folder / (f"{stem}.gz" if gz else stem), payload, gz=gz)
    return files


def checksums(files: dict[str, bytes]) -> dict[str, str]:
    return {stem: hashlib.sha256(payload).hexdigest() for stem, payload in files.items()}


def set_source(monkeypatch: pytest.MonkeyPatch, name: str, **changes: object) -> None:
    monkeypatch.setitem(data.IDX_SOURCES, name, dataclasses.replace(data.IDX_SOURCES[name], **changes))


def assert_one_line(message: str, *parts: object) -> None:
    assert "\n" not in message
    for part in parts:
        assert str(part) in message


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network, no real cache, no LAYERLAPSE_DATA, no system folders; returns the cache root."""
    monkeypatch.delenv("LAYERLAPSE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in data.IDX_SOURCES:
        set_source(monkeypatch, name, mirrors=(UNREACHABLE,), system_dirs=())
    return tmp_path / "cache"


@dataclasses.dataclass
class Mirror:
    url: str
    root: Path
    requests: list[str]

    def serve(self, files: dict[str, bytes], gz: bool = True) -> None:
        for stem, payload in files.items():
            write_file(self.root / f"{stem}.gz", payload, gz=gz)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    """A real HTTP server on 127.0.0.1 serving tmp_path/mirror, recording each requested path."""
    root = tmp_path / "mirror"
    root.mkdir()
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Mirror(f"http://127.0.0.1:{server.server_port}/", root, requests)
    server.shutdown()
    server.server_close()
    thread.join()


# --- read_idx -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_read_idx_round_trips_images_and_labels(tmp_path: Path, gz: bool) -> None:
    images, labels = synthetic_split(7, seed=3)
    suffix = ".gz" if gz else ""
    images_path = write_file(tmp_path / f"images{suffix}", idx_bytes(images), gz=gz)
    labels_path = write_file(tmp_path / f"labels{suffix}", idx_bytes(labels), gz=gz)

    read_images, read_labels = read_idx(images_path, ndim=3), read_idx(str(labels_path))

    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)
    assert read_images.dtype == np.uint8 and read_images.shape == (7, *IMAGE_SHAPE)
    assert read_images.flags.writeable  # torch.from_numpy warns on read-only arrays


def test_read_idx_recognises_gzip_by_its_magic_without_the_suffix(tmp_path: Path) -> None:
    images, _ = synthetic_split(3, seed=0)
    path = write_file(tmp_path / "train-images-idx3-ubyte", idx_bytes(images), gz=True)
    np.testing.assert_array_equal(read_idx(path), images)


GOOD = idx_bytes(np.arange(40, dtype=np.uint8).reshape(2, 4, 5))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x12\x34" + GOOD[2:], r"not an IDX file \(magic number starts 0x1234, expected 0x0000\)"),
        (GOOD[:2] + b"\x0d" + GOOD[3:], r"IDX type code 0x0d \(float32\) is not supported, only 0x08"),
        (GOOD[:-3], r"shape 2x4x5 needs 40 data bytes but the file holds 37 \(truncated\)"),
        (GOOD + b"\x00\x00", r"needs 40 data bytes but the file holds 42 \(extra bytes at the end\)"),
        (GOOD[:9], r"the IDX header is cut off \(9 of 16 bytes\)"),
        (b"\x00\x00", r"too short for an IDX header \(2 bytes"),
        (idx_bytes(np.zeros((0, 4, 5), dtype=np.uint8)), r"empty shape 0x4x5"),
    ],
    ids=["magic", "type-code", "truncated", "extra-bytes", "header-cut", "too-short", "empty"],
)
def test_read_idx_rejects_broken_files_in_one_line_with_the_fix(tmp_path: Path, payload: bytes, match: str) -> None:
    path = write_file(tmp_path / "train-images-idx3-ubyte", payload)
    with pytest.raises(DatasetError, match=match) as excinfo:
        read_idx(path)
    assert_one_line(str(excinfo.value), path, "delete it and run again to download it, or put a good copy there")


@pytest.mark.parametrize(
    "make_payload",
    [
        lambda: gzip.compress(GOOD)[:-12],  # cut off: EOFError inside gzip
        lambda: (lambda z: z[:12] + bytes(b ^ 0xFF for b in z[12:30]) + z[30:])(gzip.compress(GOOD)),  # zlib error
        lambda: GOOD,  # a raw file named .gz: BadGzipFile
    ],
    ids=["cut-off", "flipped-bytes", "not-gzip"],
)
def test_read_idx_reports_a_corrupt_gzip_stream(tmp_path: Path, make_payload) -> None:
    path = write_file(tmp_path / "t10k-images-idx3-ubyte.gz", make_payload())
    with pytest.raises(DatasetError, match="the gzip stream is corrupt") as excinfo:
        read_idx(path)
    assert_one_line(str(excinfo.value), path, "delete it")


def test_read_idx_checks_the_number_of_dimensions(tmp_path: Path) -> None:
    path = write_file(tmp_path / "labels", idx_bytes(np.arange(5, dtype=np.uint8)))
    with pytest.raises(DatasetError, match="IDX header says 1 dimensions, expected 3"):
        read_idx(path, ndim=3)


def test_read_idx_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot be read") as excinfo:
        read_idx(tmp_path / "nowhere.gz")
    assert_one_line(str(excinfo.value), tmp_path / "nowhere.gz")


# --- checks across files --------------------------------------------------------------------------------------------


def test_image_and_label_counts_must_match(tmp_path: Path) -> None:
    write_dataset(tmp_path, n_train=12)
    labels_path = write_file(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(11, np.uint8)), gz=True)
    with pytest.raises(DatasetError, match=r"holds 12 images but .* holds 11 labels") as excinfo:
        load_dataset("mnist", data_dir=tmp_path)
    assert_one_line(str(excinfo.value), tmp_path / "train-images-idx3-ubyte.gz", labels_path)


def test_labels_must_be_digits(tmp_path: Path) -> None:
    write_dataset(tmp_path, n_test=5)
    labels_path = write_file(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.array([1, 2, 12, 3, 4])), gz=True)
    with pytest.raises(DatasetError, match=r"label 12 at index 2 is outside 0\.\.9") as excinfo:
        load_dataset("mnist", data_dir=tmp_path)
    assert_one_line(str(excinfo.value), labels_path)


def test_images_must_be_three_dimensional(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    images_path = write_file(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(np.zeros(12, np.uint8)), gz=True)
    with pytest.raises(DatasetError, match="IDX header says 1 dimensions, expected 3") as excinfo:
        load_dataset("mnist", data_dir=tmp_path)
    assert_one_line(str(excinfo.value), images_path)


def test_train_and_test_images_must_have_one_size(tmp_path: Path) -> None:
    write_dataset(tmp_path, n_test=5)
    write_file(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(np.zeros((5, 3, 3), np.uint8)), gz=True)
    with pytest.raises(DatasetError, match=r"holds 4x5 images but .* holds 3x3 images"):
        load_dataset("mnist", data_dir=tmp_path)


# --- where the files are found --------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_data_dir_holding_the_four_files_directly(tmp_path: Path, gz: bool) -> None:
    files = write_dataset(tmp_path / "mine", gz=gz, n_train=12, n_test=5)
    dataset = load_dataset("mnist", data_dir=tmp_path / "mine", download=False)

    assert dataset.source == str(tmp_path / "mine")
    assert dataset.x_train.shape == (12, *IMAGE_SHAPE) and dataset.x_test.shape == (5, *IMAGE_SHAPE)
    assert dataset.x_train.dtype == np.uint8 and dataset.y_train.dtype == np.int64
    np.testing.assert_array_equal(dataset.x_train, read_idx(write_file(tmp_path / "x", files[IDX_FILES[0]])))
    assert dataset.class_names == tuple("0123456789")


def test_data_dir_holding_dataset_subfolders(tmp_path: Path) -> None:
    write_dataset(tmp_path / "mnist", n_train=11)
    write_dataset(tmp_path / "fashion-mnist", n_train=13)

    mnist = load_dataset("mnist", data_dir=tmp_path, download=False)
    fashion = load_dataset("fashion-mnist", data_dir=tmp_path, download=False)

    assert (len(mnist.x_train), mnist.source) == (11, str(tmp_path / "mnist"))
    assert (len(fashion.x_train), fashion.source) == (13, str(tmp_path / "fashion-mnist"))
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[-1] == "Ankle boot"


def test_a_folder_may_mix_raw_and_gzipped_files(tmp_path: Path) -> None:
    files = synthetic_files()
    for index, (stem, payload) in enumerate(files.items()):
        write_file(tmp_path / (stem if index % 2 else f"{stem}.gz"), payload, gz=not index % 2)
    assert len(load_dataset("mnist", data_dir=tmp_path, download=False).y_train) == 12


def test_search_order_data_dir_then_env_then_cache(
    tmp_path: Path, sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dataset(tmp_path / "arg", n_train=11)
    write_dataset(tmp_path / "env" / "mnist", n_train=12)
    write_dataset(sandbox / "layerlapse" / "mnist", n_train=13)
    monkeypatch.setenv("LAYERLAPSE_DATA", str(tmp_path / "env"))

    assert len(load_dataset("mnist", data_dir=tmp_path / "arg").y_train) == 11
    assert len(load_dataset("mnist").y_train) == 12
    monkeypatch.delenv("LAYERLAPSE_DATA")
    assert len(load_dataset("mnist").y_train) == 13


def test_an_incomplete_location_is_skipped(tmp_path: Path, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dataset(tmp_path / "env" / "mnist")
    (tmp_path / "env" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    write_dataset(sandbox / "layerlapse" / "mnist", n_train=13)
    monkeypatch.setenv("LAYERLAPSE_DATA", str(tmp_path / "env"))
    assert load_dataset("mnist").source == str(sandbox / "layerlapse" / "mnist")


def test_cache_defaults_to_home_when_xdg_cache_home_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_dataset(tmp_path / "home" / ".cache" / "layerlapse" / "mnist")
    assert load_dataset("mnist", download=False).source == str(tmp_path / "home" / ".cache" / "layerlapse" / "mnist")


def test_system_folder_comes_after_the_cache(tmp_path: Path, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_source(monkeypatch, "fashion-mnist", system_dirs=(tmp_path / "debian",))
    write_dataset(tmp_path / "debian", n_train=14)
    assert load_dataset("fashion-mnist", download=False).source == str(tmp_path / "debian")

    write_dataset(sandbox / "layerlapse" / "fashion-mnist", n_train=13)
    assert len(load_dataset("fashion-mnist", download=False).y_train) == 13


def test_debian_folder_is_where_fashion_mnist_is_looked_for() -> None:
    assert REAL_SOURCES["fashion-mnist"].system_dirs == (Path("/usr/share/datasets/fashion-mnist"),)
    assert REAL_SOURCES["mnist"].system_dirs == ()


# --- names ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("mnsit", "mnist"), ("fashion", "fashion-mnist"), ("digit", "digits")],
)
def test_unknown_dataset_suggests_the_closest_name(name: str, suggestion: str) -> None:
    with pytest.raises(DatasetError) as excinfo:
        load_dataset(name)
    assert str(excinfo.value) == (
        f"unknown dataset {name!r}: choose one of mnist, fashion-mnist, digits (did you mean {suggestion!r}?)"
    )


def test_unknown_dataset_without_a_close_name() -> None:
    with pytest.raises(DatasetError, match=r"unknown dataset 'cifar10': choose one of mnist, fashion-mnist, digits$"):
        load_dataset("cifar10")


def test_names_ignore_case_and_underscores(tmp_path: Path) -> None:
    write_dataset(tmp_path / "fashion-mnist")
    assert load_dataset("Fashion_MNIST", data_dir=tmp_path).name == "fashion-mnist"


# --- download -------------------------------------------------------------------------------------------------------

FOUR_GZ = [f"{stem}.gz" for stem in IDX_FILES]


def test_offline_failure_names_the_folder_and_the_four_files(sandbox: Path) -> None:
    with pytest.raises(DatasetError) as excinfo:
        load_dataset("mnist")
    message, folder = str(excinfo.value), sandbox / "layerlapse" / "mnist"
    assert message.startswith("MNIST is not on this machine and could not be downloaded (")
    assert_one_line(message, f"in {folder}, or pass --data-dir / set LAYERLAPSE_DATA", UNREACHABLE, *FOUR_GZ)
    assert leftovers(folder) == []  # nothing half-written


def test_offline_failure_with_data_dir_names_its_subfolder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="Fashion-MNIST is not on this machine") as excinfo:
        load_dataset("fashion-mnist", data_dir=tmp_path / "d")
    assert_one_line(str(excinfo.value), f"in {tmp_path / 'd' / 'fashion-mnist'},")
    assert leftovers(tmp_path / "d" / "fashion-mnist") == []


def test_download_false_does_not_try(mirror: Mirror, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_source(monkeypatch, "mnist", mirrors=(mirror.url,))
    with pytest.raises(DatasetError, match="MNIST is not on this machine and downloading is turned off: put") as exc:
        load_dataset("mnist", download=False)
    assert_one_line(str(exc.value), sandbox / "layerlapse" / "mnist", *FOUR_GZ)
    assert mirror.requests == []


def test_download_from_a_local_mirror(mirror: Mirror, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = synthetic_files(n_train=12, n_test=5, seed=7)
    mirror.serve(files)
    set_source(monkeypatch, "mnist", mirrors=(UNREACHABLE, mirror.url), sha256=checksums(files))

    dataset = load_dataset("mnist")

    folder = sandbox / "layerlapse" / "mnist"
    assert dataset.source == str(folder)
    assert leftovers(folder) == sorted(FOUR_GZ)  # no temporary files left
    assert all(stat.S_IMODE((folder / name).stat().st_mode) == 0o644 for name in FOUR_GZ)
    np.testing.assert_array_equal(dataset.x_train, read_idx(write_file(folder.parent / "x", files[IDX_FILES[0]])))
    np.testing.assert_array_equal(dataset.y_test, np.arange(5) % 10)
    assert sorted(mirror.requests) == sorted(f"/{name}" for name in FOUR_GZ)

    load_dataset("mnist")  # the second load reads the cache
    assert len(mirror.requests) == 4


def test_download_into_data_dir_keeps_files_already_there(
    mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = synthetic_files()
    mirror.serve(files)
    set_source(monkeypatch, "mnist", mirrors=(mirror.url.rstrip("/"),), sha256=checksums(files))
    target = tmp_path / "d" / "mnist"
    write_file(target / IDX_FILES[1], files[IDX_FILES[1]])  # one file already there, decompressed

    assert load_dataset("mnist", data_dir=tmp_path / "d").source == str(target)

    assert sorted(mirror.requests) == sorted(f"/{n}" for n in FOUR_GZ if not n.startswith(IDX_FILES[1]))
    assert leftovers(target) == sorted([IDX_FILES[1], *(n for n in FOUR_GZ if not n.startswith(IDX_FILES[1]))])


def test_download_without_known_checksums_still_checks_the_structure(
    mirror: Mirror, sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = synthetic_files()
    files[IDX_FILES[2]] = files[IDX_FILES[2]][:-1]  # truncated images: no checksum to catch it
    mirror.serve(files)
    set_source(monkeypatch, "fashion-mnist", mirrors=(mirror.url,), sha256={})
    with pytest.raises(DatasetError, match=r"\(truncated\)"):
        load_dataset("fashion-mnist")


def test_checksum_mismatch_names_the_file_and_mirror(
    mirror: Mirror, sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = synthetic_files()
    mirror.serve(files)
    sums = checksums(files) | {IDX_FILES[0]: "0" * 64}
    set_source(monkeypatch, "mnist", mirrors=(mirror.url,), sha256=sums)

    with pytest.raises(DatasetError, match=f"has SHA-256 {checksums(files)[IDX_FILES[0]]} but 0{{64}} was expected"):
        load_dataset("mnist")

    with pytest.raises(DatasetError) as excinfo:  # again, to check the message and that nothing was saved
        load_dataset("mnist")
    assert_one_line(str(excinfo.value), f"train-images-idx3-ubyte.gz downloaded from {mirror.url}", "nothing was saved")
    assert leftovers(sandbox / "layerlapse" / "mnist") == []


def test_a_mirror_serving_something_else_than_gzip(
    mirror: Mirror, sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = synthetic_files()
    mirror.serve(files, gz=False)
    set_source(monkeypatch, "mnist", mirrors=(mirror.url,), sha256=checksums(files))
    with pytest.raises(DatasetError, match=r"is not a valid gzip file .*: nothing was saved"):
        load_dataset("mnist")
    assert leftovers(sandbox / "layerlapse" / "mnist") == []


def test_http_errors_count_as_offline(mirror: Mirror, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_source(monkeypatch, "mnist", mirrors=(mirror.url,))  # serves nothing: 404
    with pytest.raises(DatasetError, match=r"could not be downloaded \(1 mirror\(s\) tried, .*: HTTP 404"):
        load_dataset("mnist")


@pytest.mark.parametrize(
    ("interruption", "expected"),
    [(KeyboardInterrupt, KeyboardInterrupt), (OSError(28, "No space left on device"), DatasetError)],
    ids=["ctrl-c", "disk-full"],
)
def test_an_interrupted_write_leaves_no_file(
    mirror: Mirror, sandbox: Path, monkeypatch: pytest.MonkeyPatch, interruption: BaseException, expected: type
) -> None:
    files = synthetic_files()
    mirror.serve(files)
    set_source(monkeypatch, "mnist", mirrors=(mirror.url,), sha256=checksums(files))

    def failing_fsync(fd: int) -> None:
        raise interruption

    monkeypatch.setattr(data.os, "fsync", failing_fsync)
    with pytest.raises(expected):
        load_dataset("mnist")
    assert leftovers(sandbox / "layerlapse" / "mnist") == []


def test_an_unwritable_target_folder(mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = synthetic_files()
    mirror.serve(files)
    set_source(monkeypatch, "mnist", mirrors=(mirror.url,), sha256=checksums(files))
    write_file(tmp_path / "afile", b"")  # a file where the folder should be
    with pytest.raises(DatasetError, match=r"cannot write to .*: choose a writable --data-dir"):
        load_dataset("mnist", data_dir=tmp_path / "afile")


# --- digits ---------------------------------------------------------------------------------------------------------


def test_digits_shapes_values_and_stratified_split() -> None:
    dataset = load_dataset("digits")

    assert dataset.x_train.shape == (1437, 8, 8) and dataset.x_test.shape == (360, 8, 8)
    assert dataset.x_train.dtype == np.uint8 and dataset.y_train.dtype == np.int64
    assert dataset.x_train.max() == 255 and dataset.x_train.min() == 0
    assert dataset.class_names == tuple("0123456789") and dataset.source == "scikit-learn load_digits"
    for labels in (dataset.y_train, dataset.y_test):
        counts = np.bincount(labels, minlength=10)
        assert counts.min() > 0 and counts.max() - counts.min() <= 0.1 * len(labels)  # stratified


def test_digits_split_is_the_same_every_time() -> None:
    first, second = load_dataset("digits"), load_dataset("digits")
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))


def test_digits_scaling_matches_sklearn() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    dataset = load_dataset("digits")
    scaled = np.rint(raw.images * 255 / 16).astype(np.uint8)
    # Every test image is one of the originals, with its label.
    originals = {(img.tobytes(), int(label)) for img, label in zip(scaled, raw.target, strict=True)}
    test_pairs = zip(dataset.x_test, dataset.y_test, strict=True)
    assert all((img.tobytes(), int(label)) in originals for img, label in test_pairs)


def test_dataset_repr() -> None:
    empty = np.zeros((3, 28, 28), np.uint8)
    dataset = Dataset("mnist", empty, np.zeros(3, np.int64), empty[:2], np.zeros(2, np.int64), ("0", "1"), "here")
    assert repr(dataset) == "Dataset('mnist', train=3x28x28, test=2x28x28, classes=2)"
    assert dataset.image_shape == (28, 28) and dataset.num_classes == 2


# --- real data ------------------------------------------------------------------------------------------------------


def _real_mnist_folder() -> Path:
    folder = Path(REAL_DATA or "") / "mnist"
    if not REAL_DATA or data._idx_paths(folder) is None:
        pytest.skip("set LAYERLAPSE_DATA to a folder holding mnist/ with the four IDX files")
    return folder


def test_real_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _real_mnist_folder()
    monkeypatch.setenv("LAYERLAPSE_DATA", str(REAL_DATA))

    start = time.perf_counter()
    dataset = load_dataset("mnist", download=False)
    seconds = time.perf_counter() - start

    assert dataset.source == str(folder)
    assert dataset.x_train.shape == (60000, 28, 28) and dataset.x_test.shape == (10000, 28, 28)
    assert dataset.x_train.max() == 255
    # The well-known class counts of MNIST, an oracle for reading the files in order and whole.
    assert np.bincount(dataset.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(dataset.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert seconds < 5


def test_embedded_mnist_checksums_match_the_real_files() -> None:
    folder = _real_mnist_folder()
    for stem, path in data._idx_paths(folder).items():
        content = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        assert hashlib.sha256(content).hexdigest() == REAL_SOURCES["mnist"].sha256[stem], stem


def test_embedded_fashion_checksums_match_debian_files() -> None:
    folder = Path("/usr/share/datasets/fashion-mnist")
    paths = data._idx_paths(folder)
    if paths is None:
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    for stem, path in paths.items():
        content = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        assert hashlib.sha256(content).hexdigest() == REAL_SOURCES["fashion-mnist"].sha256[stem], stem
