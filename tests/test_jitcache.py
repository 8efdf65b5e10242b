"""jitcache.enable_disk_cache: umap's and pynndescent's numba code loaded from NUMBA_CACHE_DIR, same results.

The check runs in a fresh interpreter (what the cache is for), in the tests' NUMBA_CACHE_DIR (conftest.py): a cold
cache takes a second run, the first compiling and saving."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"

# smooth_knn_dist: a parallel umap function; init_random: a pynndescent function given a distance function as an
# argument (numba keys that signature by the function object, which only enable_disk_cache makes the same in every
# process). Each is compared with a freshly compiled, uncached copy of itself.
SCRIPT = r"""
import json
import numpy as np
import umap, pynndescent
from layerlapse.jitcache import enable_disk_cache
from pynndescent.distances import squared_euclidean
from pynndescent.pynndescent_ import init_random
from pynndescent.utils import make_heap
from umap.umap_ import smooth_knn_dist

enabled = enable_disk_cache()
again = enable_disk_cache()

def fresh(dispatcher):
    return type(dispatcher)(dispatcher.py_func, locals=dispatcher.locals, targetoptions=dict(dispatcher.targetoptions))

rng = np.random.default_rng(0)
knn_dists = np.sort(rng.random((60, 6)).astype(np.float32), axis=1)
data = rng.normal(size=(40, 3)).astype(np.float32)
seed = np.random.RandomState(0).randint(-2**31 + 1, 2**31 - 1, 3).astype(np.int64)
same = {}
for name, function in (("smooth_knn_dist", smooth_knn_dist), ("init_random", init_random)):
    results = []
    for f in (function, fresh(function)):
        if name == "smooth_knn_dist":
            results.append(f(knn_dists, 6.0))
        else:
            heap = make_heap(40, 5)
            f(5, data, heap, squared_euclidean, seed.copy())
            results.append(heap)
    same[name] = all(np.array_equal(a, b) for a, b in zip(*results))
hits = {f.__name__: sum(f.stats.cache_hits.values()) for f in (smooth_knn_dist, init_random)}
print(json.dumps({"enabled": enabled, "again": again, "hits": hits, "same": same}))
"""


def run_fresh() -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "NumbaWarning" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_enable_disk_cache_loads_from_disk_and_gives_the_same_results() -> None:
    result = run_fresh()
    if not all(result["hits"].values()):  # a cold cache: that run compiled and saved; this one loads
        result = run_fresh()
    assert result["enabled"] > 0
    assert result["again"] == 0  # everything it can enable already was
    assert result["hits"]["smooth_knn_dist"] > 0 and result["hits"]["init_random"] > 0
    assert result["same"] == {"smooth_knn_dist": True, "init_random": True}
