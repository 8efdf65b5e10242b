"""jitcache.enable_disk_cache: umap's/pynndescent's numba code saved to and loaded from NUMBA_CACHE_DIR, same results.

Each check runs in a fresh interpreter (what the cache is for), twice on one empty cache folder: the first compiles and
saves, the second loads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"

# smooth_knn_dist: a parallel umap function; init_random: a pynndescent function given a distance function as an
# argument (numba keys that signature by the function object, which only enable_disk_cache makes stable)
SCRIPT = r"""
import json, sys
import numpy as np
import umap, pynndescent
from layerlapse.jitcache import enable_disk_cache
from pynndescent.distances import squared_euclidean
from pynndescent.pynndescent_ import init_random
from pynndescent.utils import make_heap
from umap.umap_ import smooth_knn_dist

enabled = enable_disk_cache()
again = enable_disk_cache()
rng = np.random.default_rng(0)
knn_dists = np.sort(rng.random((60, 6)).astype(np.float32), axis=1)
sigmas, rhos = smooth_knn_dist(knn_dists, 6.0)
ref_sigmas, ref_rhos = smooth_knn_dist.py_func(knn_dists, 6.0)
data = rng.normal(size=(40, 3)).astype(np.float32)
heap = make_heap(40, 5)
init_random(5, data, heap, squared_euclidean, np.array([1, 2, 3], dtype=np.int64))
hits = {f.__name__: sum(f.stats.cache_hits.values()) for f in (smooth_knn_dist, init_random)}
print(json.dumps({"enabled": enabled, "again": again, "hits": hits,
                  "python_agrees": bool(np.allclose(sigmas, ref_sigmas, rtol=1e-4)
                                        and np.allclose(rhos, ref_rhos, rtol=1e-4)),
                  "sigmas": sigmas.tolist(), "rhos": rhos.tolist(), "heap": [h.tolist() for h in heap]}))
"""


def run_fresh(cache_dir: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir),
               PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "NumbaWarning" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_enable_disk_cache_saves_loads_and_gives_the_same_results(tmp_path: Path) -> None:
    first = run_fresh(tmp_path)
    assert first["enabled"] > 0
    assert first["again"] == 0  # everything it can enable is already enabled
    assert first["python_agrees"]
    assert first["hits"] == {"smooth_knn_dist": 0, "init_random": 0}
    assert any(tmp_path.rglob("*.nbi")) and any(tmp_path.rglob("*.nbc"))

    second = run_fresh(tmp_path)
    assert second["enabled"] == first["enabled"]
    assert second["hits"]["smooth_knn_dist"] > 0 and second["hits"]["init_random"] > 0
    for key in ("sigmas", "rhos", "heap"):
        assert np.array_equal(np.asarray(second[key]), np.asarray(first[key])), key
