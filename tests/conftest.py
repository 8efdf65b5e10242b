"""Shared test settings: numba's compiled UMAP code cached on disk across test runs."""

import os
import signal
import subprocess
import sys
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


@pytest.fixture
def main_here(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Call the console script's entry point `cli.main()` in this process (no 5 s start of a fresh one);
    returns what a subprocess would."""
    from layerlapse.cli import main

    def call(*args: str | Path) -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "argv", ["layerlapse", *map(str, args)])
        previous = signal.getsignal(signal.SIGTERM)  # main() turns SIGTERM into Ctrl-C; give pytest its own back
        try:
            main()
            code = 0
        except SystemExit as exited:
            code = exited.code
        finally:
            signal.signal(signal.SIGTERM, previous)
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)
    return call
