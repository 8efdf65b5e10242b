"""The `torchdr` map backend: TorchDR's UMAP (torch; on CUDA when present) runs the aligned map's neighbour graph
and its warm-started layout. `pip install 'layerlapse[torchdr]'` installs TorchDR and faiss-cpu, which TorchDR uses
for the k-nearest-neighbour search (without faiss, torch computes every pairwise distance: n² floats in memory).

The aligned map's rules are layerlapse's own and stay in `layerlapse.maps.project`: the warm start holds the last frame
exactly (TorchDR would rescale an `init` to a tiny spread; `init_scaling` is set so it does not), each point's steps
are scaled by its mobility (an SGD whose step multiplies each row's gradient), and the Procrustes turn follows.

TorchDR's UMAP differs from umap-learn's in its updates (all edges at once per iteration, not one after another) and
its cold start (PCA, not spectral), so the two backends' frames are not the same frames; their faithfulness is
compared in tests/maps/test_map_backends.py and docs/benchmarks.md.

TorchDR's own multi-GPU mode (one process per GPU under `torchrun`) is switched off here (`distributed=False`): every
rank would have to make the same fit in lock-step, while a layerlapse run maps in one process (the mapping worker,
or rank zero of a distributed training) and has one writer. See docs/benchmarks.md, "Map backends".
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ConfigError

# Warm frames: TorchDR's updates (every edge's gradient summed, then one step per point) carry a point less far per
# epoch than umap-learn's edge-by-edge updates. On a clustered set where half a cluster joins another in the layer,
# 50 epochs brought 90 % of the moved points nearer their new cluster than their old one (median 8.9 from its
# centre), 100 epochs all of them (3.3; umap-learn's 50 epochs: 2.3), 200 no further (3.3); the points whose
# neighbours did not change held still in each (tests/maps/test_map_backends.py)
WARM_EPOCHS = 100
# Without faiss TorchDR's search holds the n × n distances twice over (the matrix and its diagonal's mask, float32):
# 3.2 GB at 20,000 points, 29 GB at 60,000
TORCH_SEARCH_MAX_POINTS = 20_000
INSTALL_HINT = ("--map-backend torchdr needs TorchDR: pip install 'layerlapse[torchdr]' "
                "(or pip install torchdr faiss-cpu)")


def _torch_and_umap() -> tuple[Any, Any]:
    try:
        import torch
        from torchdr import UMAP
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return torch, UMAP


def cuda_present() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def cold_epochs(n_points: int) -> int:
    """umap-learn's number of optimisation epochs for a fresh fit, so a cold frame gets as many as it would there."""
    return 500 if n_points <= 10_000 else 200


class TorchDRBackend:
    """TorchDR's k-NN search and UMAP, on CUDA when torch sees a GPU, else on the CPU."""

    name = "torchdr"
    warm_epochs = WARM_EPOCHS  # a warm frame's optimisation epochs (MapBackend.warm_epochs)

    def __init__(self) -> None:
        torch, _ = _torch_and_umap()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        # faiss searches in blocks; without it TorchDR's torch search holds the whole n × n distance matrix
        self.knn_engine = "faiss" if _faiss_present() else None

    def __repr__(self) -> str:
        return f"TorchDRBackend(device={self.device!r}, knn={self.knn_engine or 'torch'!r})"

    def first_frame(self, x: np.ndarray, n_neighbors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """A cold TorchDR UMAP (PCA start, umap-learn's number of epochs) and the frame's neighbour graph."""
        xy = self._fit(x, n_neighbors, seed, init="pca", max_iter=cold_epochs(len(x)))
        return xy, self.neighbors(x, n_neighbors, seed=seed)[0]

    def neighbors(self, x: np.ndarray, k: int, *, seed: int, start: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Exact k nearest rows (itself first) and Euclidean distances. `start` is not needed: an exact search on
        the device costs less than checking an earlier graph would."""
        torch, _ = _torch_and_umap()
        from torchdr.distance import pairwise_distances

        self._check_search_fits(len(x))

        squared, found = pairwise_distances(torch.from_numpy(np.ascontiguousarray(x)).to(self.device), k=k - 1,
                                            exclude_diag=True, return_indices=True, backend=self.knn_engine,
                                            metric="sqeuclidean")
        itself = np.arange(len(x), dtype=np.int32)[:, None]
        indices = np.hstack([itself, found.cpu().numpy().astype(np.int32)])
        distances = np.hstack([np.zeros_like(itself, dtype=np.float32),
                               np.sqrt(np.maximum(squared.cpu().numpy(), 0.0)).astype(np.float32)])
        return indices, distances

    def warm_layout(self, x: np.ndarray, knn: np.ndarray, distances: np.ndarray, start: np.ndarray, *, seed: int,
                    n_epochs: int, learning_rate: float, mobility: np.ndarray) -> np.ndarray:
        """TorchDR's UMAP optimisation from `start`, in its own scale, each row's steps times its mobility.
        TorchDR builds its graph from `x` itself (its UMAP takes no precomputed k-NN), with the same k."""
        torch, _ = _torch_and_umap()
        first_axis = torch.from_numpy(np.ascontiguousarray(start[:, 0]))
        # TorchDR starts from init_scaling × init / std(init[:, 0]) (torch's std): this scaling gives back `start`
        return self._fit(x, knn.shape[1], seed, init=start, init_scaling=float(first_axis.std()), max_iter=n_epochs,
                         lr=learning_rate, optimizer=_mobility_sgd(torch),
                         optimizer_kwargs={"mobility": torch.from_numpy(mobility).to(self.device)})

    def _fit(self, x: np.ndarray, n_neighbors: int, seed: int, **settings: Any) -> np.ndarray:
        """TorchDR's UMAP fitted to `x`, the process's random generators and cuDNN flags left as they were:
        TorchDR seeds Python's, NumPy's and torch's global generators and sets cuDNN's flags (seed_everything),
        which would change a training that maps in its own process."""
        torch, UMAP = _torch_and_umap()
        self._check_search_fits(len(x))
        with _global_state_kept(torch):
            # UMAP's defaults as umap-learn has them (min_dist 0.1, spread 1); one process, see the module's notes
            reducer = UMAP(n_neighbors=n_neighbors, n_components=2, min_dist=0.1, spread=1.0, device=self.device,
                           backend=self.knn_engine, random_state=seed, distributed=False, verbose=False, **settings)
            return np.asarray(reducer.fit_transform(x), dtype=np.float32)

    def _check_search_fits(self, n_points: int) -> None:
        if self.knn_engine is None and n_points > TORCH_SEARCH_MAX_POINTS:
            raise ConfigError(f"--map-backend torchdr without faiss would hold all {n_points:,}² distances in memory "
                              f"(up to {TORCH_SEARCH_MAX_POINTS:,} points it may): pip install faiss-cpu")


def _faiss_present() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _global_state_kept(torch: Any) -> Iterator[None]:
    python, numpy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    hash_seed = os.environ.get("PYTHONHASHSEED")
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        if hash_seed is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = hash_seed


def _mobility_sgd(torch: Any) -> type:
    """torch's SGD whose step scales each embedding row's gradient by that point's mobility (0 holds it still, 1
    leaves it free), as layerlapse's anchored SGD does for umap-learn's optimisation."""

    class MobilitySGD(torch.optim.SGD):
        def __init__(self, params: Any, lr: float, mobility: Any) -> None:
            super().__init__(params, lr=lr)
            self.mobility = mobility[:, None]

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            for group in self.param_groups:
                for parameter in group["params"]:
                    if parameter.grad is not None:
                        parameter.grad.mul_(self.mobility.to(parameter.grad.dtype))
            return super().step(closure)

    return MobilitySGD
