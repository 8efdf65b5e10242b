"""Shared test settings: numba's compiled UMAP code cached on disk across test runs."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))


def mnist_folder() -> Path | None:
    """The folder holding mnist/, from LAYERLAPSE_DATA, if it has the four files."""
    root = os.environ.get("LAYERLAPSE_DATA")
    if not root or not (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        return None
    return Path(root)


@pytest.fixture
def mnist_root() -> Path:
    folder = mnist_folder()
    if folder is None:
        pytest.skip("set LAYERLAPSE_DATA to a folder holding mnist/ with the four IDX files")
    return folder
