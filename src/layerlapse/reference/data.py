"""Datasets: MNIST and Fashion-MNIST from their IDX files, and scikit-learn's bundled 8x8 digits.

`load_dataset(name)` finds the four IDX files on this machine, or downloads them once (checked against the SHA-256 of
their decompressed contents, so any gzip settings are fine), reads them with `read_idx`, checks that they fit together
and returns a `Dataset` of uint8 images and int64 labels. Nothing is cached in module state: every call reads again.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import http.client
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..store.atomic import write_bytes
from ..errors import DatasetError, StorageError
from .._util.paths import cache_root

DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist", "digits")

# The standard names, in the order train images, train labels, test images, test labels.
IDX_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

DOWNLOAD_TIMEOUT_S = 30.0
DATA_ENV_VAR = "LAYERLAPSE_DATA"

DIGIT_NAMES: tuple[str, ...] = tuple(str(digit) for digit in range(10))
FASHION_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class IdxSource:
    """Where an IDX dataset comes from: its display title, class names, mirrors, checksums and system folders."""

    title: str
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]
    sha256: Mapping[str, str]  # of each decompressed file; a missing entry means "structure checks only"
    system_dirs: tuple[Path, ...] = ()


IDX_SOURCES: dict[str, IdxSource] = {
    "mnist": IdxSource(
        title="MNIST",
        class_names=DIGIT_NAMES,
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ),
    "fashion-mnist": IdxSource(
        title="Fashion-MNIST",
        class_names=FASHION_NAMES,
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        # Computed from Debian's dataset-fashion-mnist; Debian recompressed the .gz files, the contents are upstream's.
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    ),
}

_FIX = "delete it and run again to download it, or put a good copy there"
_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_IDX_TYPES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
# Everything urllib raises when a server cannot be reached or breaks off: URLError and timeouts are OSErrors.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


@dataclass(frozen=True, eq=False, repr=False)  # eq=False: comparing arrays with == has no single truth value
class Dataset:
    """A labelled image dataset: uint8 images (N, H, W) in 0..255 and int64 labels (N,), split into train and test.

    What `load_dataset` returns; the reference experiment trains on `x_train` and records its probe from it.

    Parameters
    ----------
    name : str
        The dataset's name: "mnist", "fashion-mnist" or "digits".
    x_train : numpy.ndarray
        Training images, uint8 (N, H, W), 0..255.
    y_train : numpy.ndarray
        Training labels, int64 (N,), indices into `class_names`.
    x_test : numpy.ndarray
        Test images, as `x_train`.
    y_test : numpy.ndarray
        Test labels, as `y_train`.
    class_names : tuple of str
        Each class's name, by label.
    source : str
        Where the data came from: the folder its files were read from, or scikit-learn for the digits.

    Examples
    --------
    >>> from layerlapse import load_dataset
    >>> digits = load_dataset("digits")
    >>> digits.image_shape, digits.num_classes, digits.x_train.dtype
    ((8, 8), 10, dtype('uint8'))
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str

    @property
    def num_classes(self) -> int:
        """The number of classes (of `class_names`)."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int]:
        """An image's (height, width)."""
        return (int(self.x_train.shape[1]), int(self.x_train.shape[2]))

    def __repr__(self) -> str:
        train, test = "x".join(map(str, self.x_train.shape)), "x".join(map(str, self.x_test.shape))
        return f"Dataset({self.name!r}, train={train}, test={test}, classes={self.num_classes})"


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> Dataset:
    """Load a dataset by name ("mnist", "fashion-mnist" or "digits").

    IDX files are looked for in `data_dir` (the four files directly, or a `<name>/` subfolder), then in
    `$LAYERLAPSE_DATA/<name>/`, then in the cache (`$XDG_CACHE_HOME/layerlapse/<name>/`, default `~/.cache/...`),
    then in system folders (Debian's dataset-fashion-mnist). If none holds all four and `download` is true they are
    downloaded into `<data_dir>/<name>/`, or the cache when no `data_dir` is given, and checked against their
    SHA-256 sums before they are written. The digits are scikit-learn's bundled 8×8 images, scaled to 0..255 and
    split 80/20 (stratified, seeded): no files, no network.

    Parameters
    ----------
    name : str
        "mnist", "fashion-mnist" or "digits" (case and `_` for `-` do not matter).
    data_dir : str or os.PathLike, optional
        The first folder to look in, and where a download goes.
    download : bool, default True
        Download the files when they are found nowhere; False raises `DatasetError` instead.

    Returns
    -------
    Dataset
        The train and test images and labels, and the class names.

    Raises
    ------
    DatasetError
        The name is unknown, or the files are missing (and cannot be downloaded) or damaged; the one-line message
        names the folder and what to do.

    Examples
    --------
    >>> from layerlapse import load_dataset
    >>> load_dataset("digits")
    Dataset('digits', train=1437x8x8, test=360x8x8, classes=10)
    """
    key = _canonical_name(name)
    if key == "digits":
        return _load_digits()
    source = IDX_SOURCES[key]
    found = _find_idx_files(key, source, data_dir)
    if found is None:
        folder = _download_folder(key, data_dir)
        if not download:
            raise DatasetError(_missing_message(source, folder, "downloading is turned off"))
        found = folder, _download_missing(source, folder)
    return _load_idx_files(key, source, *found)


def read_idx(path: str | os.PathLike[str], ndim: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes, gzip-compressed or raw, checking its header and size.

    `ndim`, when given, is the number of dimensions the file must have (1 for labels, 3 for images).
    """
    path = Path(path)
    payload = _read_bytes(path)
    if path.name.endswith(".gz") or payload[:2] == _GZIP_MAGIC:
        payload = _gunzip(path, payload)
    shape, header_size = _parse_header(path, payload, ndim)
    _check_size(path, shape, len(payload) - header_size)
    # bytearray makes the array writable (torch.from_numpy warns on read-only memory) at the cost of one copy.
    return np.frombuffer(bytearray(payload), dtype=np.uint8, offset=header_size).reshape(shape)


# --- reading and checking -------------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({_one_line(exc)}): check that it exists and is readable") from exc


def _gunzip(path: Path, payload: bytes) -> bytes:
    try:
        return gzip.decompress(payload)
    except (EOFError, OSError, zlib.error) as exc:  # BadGzipFile is an OSError; a cut-off stream is an EOFError
        raise DatasetError(f"{path}: the gzip stream is corrupt ({_one_line(exc)}): {_FIX}") from exc


def _parse_header(path: Path, payload: bytes, ndim: int | None) -> tuple[tuple[int, ...], int]:
    """Check the IDX magic number and return the shape and the header's size in bytes."""
    if len(payload) < 4:
        raise DatasetError(f"{path}: too short for an IDX header ({len(payload)} bytes, expected at least 4): {_FIX}")
    if payload[0] != 0 or payload[1] != 0:
        raise DatasetError(
            f"{path}: not an IDX file (magic number starts 0x{payload[0]:02x}{payload[1]:02x}, expected 0x0000): {_FIX}"
        )
    type_code, file_ndim = payload[2], payload[3]
    if type_code != _UBYTE:
        kind = _IDX_TYPES.get(type_code, "unknown type")
        raise DatasetError(
            f"{path}: IDX type code 0x{type_code:02x} ({kind}) is not supported, only 0x08 (unsigned byte): {_FIX}"
        )
    if ndim is not None and file_ndim != ndim:
        raise DatasetError(f"{path}: IDX header says {file_ndim} dimensions, expected {ndim}: {_FIX}")
    header_size = 4 + 4 * file_ndim
    if len(payload) < header_size:
        raise DatasetError(f"{path}: the IDX header is cut off ({len(payload)} of {header_size} bytes): {_FIX}")
    shape = tuple(int.from_bytes(payload[4 + 4 * i : 8 + 4 * i], "big") for i in range(file_ndim))
    if 0 in shape:
        raise DatasetError(f"{path}: IDX header gives an empty shape {_shape_text(shape)}: {_FIX}")
    return shape, header_size


def _check_size(path: Path, shape: tuple[int, ...], found: int) -> None:
    expected = int(np.prod(shape, dtype=object))  # object dtype: a corrupt header must not overflow int64
    if found != expected:
        problem = "truncated" if found < expected else "extra bytes at the end"
        raise DatasetError(
            f"{path}: shape {_shape_text(shape)} needs {expected} data bytes but the file holds {found} "
            f"({problem}): {_FIX}"
        )


def _load_idx_files(name: str, source: IdxSource, folder: Path, paths: dict[str, Path]) -> Dataset:
    x_train, y_train = _read_pair(paths[IDX_FILES[0]], paths[IDX_FILES[1]], len(source.class_names))
    x_test, y_test = _read_pair(paths[IDX_FILES[2]], paths[IDX_FILES[3]], len(source.class_names))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"{paths[IDX_FILES[0]]} holds {_shape_text(x_train.shape[1:])} images but {paths[IDX_FILES[2]]} holds "
            f"{_shape_text(x_test.shape[1:])} images: put the train and test files of one dataset together"
        )
    return Dataset(name, x_train, y_train, x_test, y_test, source.class_names, str(folder))


def _read_pair(images_path: Path, labels_path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label files and check that they belong together."""
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels: "
            "put the matching pair of files together"
        )
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        raise DatasetError(
            f"{labels_path}: label {labels[bad[0]]} at index {bad[0]} is outside 0..{num_classes - 1}: {_FIX}"
        )
    return images, labels.astype(np.int64)


# --- where the files are --------------------------------------------------------------------------------------------


def _canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    if key in DATASETS:
        return key
    close = difflib.get_close_matches(key, DATASETS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise DatasetError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}{hint}")


def _candidate_folders(name: str, source: IdxSource, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """The folders that may hold the four files, in the order they are tried."""
    folders: list[Path] = []
    if data_dir is not None:
        folders += [Path(data_dir).expanduser(), Path(data_dir).expanduser() / name]
    env_dir = os.environ.get(DATA_ENV_VAR)
    if env_dir:
        folders.append(Path(env_dir).expanduser() / name)
    folders.append(_cache_folder(name))
    folders += source.system_dirs
    return folders


def _cache_folder(name: str) -> Path:
    return cache_root() / name


def _download_folder(name: str, data_dir: str | os.PathLike[str] | None) -> Path:
    # A subfolder even under data_dir, because MNIST and Fashion-MNIST use the same four file names.
    return Path(data_dir).expanduser() / name if data_dir is not None else _cache_folder(name)


def _find_idx_files(
    name: str, source: IdxSource, data_dir: str | os.PathLike[str] | None
) -> tuple[Path, dict[str, Path]] | None:
    """The first folder that holds all four files, with their paths; None if no folder does."""
    for folder in _candidate_folders(name, source, data_dir):
        paths = _idx_paths(folder)
        if paths is not None:
            return folder, paths
    return None


def _idx_paths(folder: Path) -> dict[str, Path] | None:
    """The path of each of the four files in `folder`, raw or gzipped, or None if any is missing."""
    paths: dict[str, Path] = {}
    for stem in IDX_FILES:
        path = _existing_idx_path(folder, stem)
        if path is None:
            return None
        paths[stem] = path
    return paths


def _existing_idx_path(folder: Path, stem: str) -> Path | None:
    # Prefer the raw file: it reads faster than the gzipped one.
    return next((folder / n for n in (stem, f"{stem}.gz") if (folder / n).is_file()), None)


def _missing_message(source: IdxSource, folder: Path, reason: str) -> str:
    names = ", ".join(f"{stem}.gz" for stem in IDX_FILES)
    return (
        f"{source.title} is not on this machine and {reason}: put {names} in {folder}, "
        f"or pass --data-dir / set {DATA_ENV_VAR}"
    )


# --- download -------------------------------------------------------------------------------------------------------


def _download_missing(source: IdxSource, folder: Path) -> dict[str, Path]:
    """Download each of the four files that `folder` lacks (files already there are kept); return all four paths."""
    paths: dict[str, Path] = {}
    for stem in IDX_FILES:
        paths[stem] = _existing_idx_path(folder, stem) or _download_file(source, folder, f"{stem}.gz")
    return paths


def _download_file(source: IdxSource, folder: Path, filename: str) -> Path:
    """Try each mirror in turn; verify before writing, so a bad download never touches the disk."""
    last_error = "no mirrors are configured"
    for mirror in source.mirrors:
        url = f"{mirror.rstrip('/')}/{filename}"
        try:
            payload = _fetch(url)
        except _NETWORK_ERRORS as exc:
            last_error = f"{len(source.mirrors)} mirror(s) tried, last {url}: {_network_reason(exc)}"
            continue
        _verify_download(source, folder, filename, url, payload)
        _write_atomic(folder / filename, payload)
        return folder / filename
    raise DatasetError(_missing_message(source, folder, f"could not be downloaded ({last_error})"))


def _fetch(url: str) -> bytes:
    # The files are at most ~26 MB, so holding one in memory is cheaper than a temporary file to verify.
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        payload: bytes = response.read()
    return payload


def _verify_download(source: IdxSource, folder: Path, filename: str, url: str, payload: bytes) -> None:
    stem = filename.removesuffix(".gz")
    try:
        content = gzip.decompress(payload)
    except (EOFError, OSError, zlib.error) as exc:
        raise DatasetError(
            f"{filename} downloaded from {url} is not a valid gzip file ({_one_line(exc)}): nothing was saved; "
            f"try again later or put a good copy in {folder}"
        ) from exc
    expected = source.sha256.get(stem)
    actual = hashlib.sha256(content).hexdigest()
    if expected is not None and actual != expected:
        raise DatasetError(
            f"{filename} downloaded from {url} has SHA-256 {actual} but {expected} was expected: nothing was saved; "
            f"try again later or put a good copy in {folder}"
        )


def _write_atomic(path: Path, payload: bytes) -> None:
    """Write through a temporary file in the same folder, then rename, so `path` is either absent or complete."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot write to {path.parent} ({_one_line(exc)}): choose a writable --data-dir") from exc
    try:
        write_bytes(path, payload)
    except StorageError as exc:  # a full or read-only disk, said in one line already
        raise DatasetError(str(exc)) from None
    except OSError as exc:
        raise DatasetError(f"cannot write {path} ({_one_line(exc)}): check the free space and permissions") from exc


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return _one_line(exc.reason)
    return _one_line(exc)


# --- digits ---------------------------------------------------------------------------------------------------------


def _load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (values 0..16), scaled to 0..255 and split 80/20, stratified and seeded."""
    # Imported here so that `import layerlapse.reference.data` stays fast for the IDX datasets.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.2, stratify=labels, random_state=0)
    return Dataset("digits", x_train, y_train, x_test, y_test, DIGIT_NAMES, "scikit-learn load_digits")


# --- small helpers --------------------------------------------------------------------------------------------------


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _one_line(value: object) -> str:
    # Messages are one line; some OS and zlib errors carry newlines or runs of spaces.
    return " ".join(str(value).split())
