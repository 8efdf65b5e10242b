"""layerlapse.maps.pca: scikit-learn's PCA (the same plane, the same signs) a block of rows at a time."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from layerlapse.store import blocks
from layerlapse.maps import pca
from layerlapse.maps.pca import principal_plane


def low_rank(n: int, width: int, seed: int = 0) -> np.ndarray:
    """Rows near a plane of clearly leading directions, off-centre, as float32 activations."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(6, width)) * np.array([10.0, 6.0, 3.0, 2.0, 1.0, 1.0])[:, None]
    return (rng.normal(size=(n, 6)) @ directions + rng.normal(size=(n, width)) + 3.0).astype(np.float32)


@pytest.mark.parametrize(("n", "width", "route"), [(2_000, 20, "covariance"), (1_500, 300, "randomized")])
def test_the_plane_is_scikit_learns_a_block_at_a_time(monkeypatch, n: int, width: int, route: str) -> None:
    x = low_rank(n, width)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 16 * 1024)  # many blocks
    if route == "randomized":
        monkeypatch.setattr(pca, "COVARIANCE_UP_TO", 100)
    expected = PCA(n_components=2, random_state=0).fit_transform(x.astype(np.float64))
    plane = principal_plane(x, seed=0)
    assert plane.shape == (n, 2) and plane.dtype == np.float32
    np.testing.assert_allclose(plane, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_no_float64_copy_of_the_rows_is_made(monkeypatch) -> None:
    import tracemalloc

    x = low_rank(20_000, 200)  # 16 MB as float32, 32 MB as float64
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 1024 * 1024)
    tracemalloc.start()
    principal_plane(x, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"{peak / 2**20:.1f} MiB"


def test_a_pca_frame_copies_no_snapshot(monkeypatch) -> None:
    """The mapper's checks (finite rows, a constant layer) and the plane all go a block at a time: a frame's peak
    stays well under the float32 rows it is given (16 MB here)."""
    import tracemalloc

    from layerlapse.maps.project import EpochMapper

    x = low_rank(20_000, 200)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 1024 * 1024)
    mapper = EpochMapper("pca")
    tracemalloc.start()
    xy = mapper.next(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.isfinite(xy).all() and peak < 8 * 1024 * 1024, f"{peak / 2**20:.1f} MiB"
