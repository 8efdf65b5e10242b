"""What runs the aligned map's heavy parts: the neighbour graph and the warm-started layout.

The aligned method's rules stay in `layerlapse.maps.project` whatever runs them (when a frame starts cold, how free each
point is to move, the Procrustes turn onto the last frame, the placement of new points); a backend only computes:

- `first_frame(x, n_neighbors, seed)`: a cold, seeded UMAP frame and its neighbour graph (each row itself first);
- `neighbors(x, k, seed=, start=)`: each row's k nearest rows (itself first) and their distances, `start` being the
  last epoch's graph, which a backend may use to search faster;
- `warm_layout(x, knn, distances, start, seed=, n_epochs=, learning_rate=, mobility=)`: UMAP's optimisation
  continued from `start` for `n_epochs` (the backend's `warm_epochs`), each point's steps scaled by its `mobility`.

Backends (`--map-backend`):

- `umap-learn`: umap-learn and pynndescent on the CPU, the code path layerlapse has always had;
  `layerlapse.maps.umap_learn`.
- `torchdr`: TorchDR's UMAP on torch, on CUDA when present (`pip install 'layerlapse[torchdr]'`);
  `layerlapse.maps.torchdr`.
- `auto`: `torchdr` where CUDA and TorchDR are both present, `umap-learn` everywhere else. On a 2-core CPU a warm
  frame of MNIST took 8.4× (10,000 points) to 12× (60,000) as long with TorchDR as with umap-learn, and was no more
  faithful (docs/benchmarks.md, "Map backends"); on a GPU the choice rests on TorchDR being made for one, not yet
  measured.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import MAP_BACKENDS
from ..errors import ConfigError


class MapBackend(Protocol):
    name: str
    # the optimisation epochs EpochMapper gives a warm frame (times SMALL_MAP_EPOCHS_FACTOR for a small map:
    # project.warm_epochs_for), chosen for each backend by bench/maps.py
    warm_epochs: int

    def first_frame(self, x: np.ndarray, n_neighbors: int, seed: int) -> tuple[np.ndarray, np.ndarray]: ...

    def neighbors(self, x: np.ndarray, k: int, *, seed: int, start: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]: ...

    def warm_layout(self, x: np.ndarray, knn: np.ndarray, distances: np.ndarray, start: np.ndarray, *, seed: int,
                    n_epochs: int, learning_rate: float, mobility: np.ndarray) -> np.ndarray: ...


def resolve_backend(name: str) -> str:
    """The backend a name stands for on this machine: `auto` by what is installed and whether CUDA is present."""
    if name not in MAP_BACKENDS:
        raise ConfigError(f"unknown map backend {name!r}: choose one of {', '.join(MAP_BACKENDS)}")
    if name != "auto":
        return name
    return "torchdr" if _torchdr_installed() and _cuda_present() else "umap-learn"


def load_backend(name: str) -> MapBackend:
    """The backend object for a name (after `resolve_backend`); a one-line error with the install hint when its
    library is missing."""
    name = resolve_backend(name)
    if name == "torchdr":
        from .torchdr import TorchDRBackend

        return TorchDRBackend()
    from .umap_learn import UmapLearnBackend

    return UmapLearnBackend()


def _torchdr_installed() -> bool:
    return importlib.util.find_spec("torchdr") is not None


def _cuda_present() -> bool:
    """Whether torch sees a GPU. Torch is imported only where an NVIDIA driver is loaded: importing it takes
    seconds, and `layerlapse render` on a machine without a GPU never needs it."""
    if not Path("/proc/driver/nvidia/version").exists() and shutil.which("nvidia-smi") is None:
        return False
    from .torchdr import cuda_present

    return cuda_present()
