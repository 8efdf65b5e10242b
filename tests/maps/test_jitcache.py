"""jitcache.enable_disk_cache: umap's and pynndescent's numba code loaded from NUMBA_CACHE_DIR, same results; and
jitcache.map_code_on_disk: whether that code is there yet, told from numba's own file names.

The check runs in a fresh interpreter (what the cache is for), in the tests' NUMBA_CACHE_DIR (conftest.py): a cold
cache takes a second run, the first compiling and saving."""

import json
import os
import subprocess
import sys
from pathlib import Path


SRC = Path(__file__).resolve().parents[2] / "src"

# smooth_knn_dist: a parallel umap function; init_random: a pynndescent function given a distance function as an
# argument (numba keys that signature by the function object, which only enable_disk_cache makes the same in every
# process). Each is compared with a freshly compiled, uncached copy of itself.
SCRIPT = r"""
import json
import numpy as np
import umap, pynndescent
from layerlapse.maps.jitcache import enable_disk_cache
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


# --- map_code_on_disk: whether a first map will compile (the run says so while it waits) ----------------------------


def numba_index_path(package: str, module: str, function: str) -> Path:
    """Where numba itself puts the function's index file in the tests' NUMBA_CACHE_DIR (conftest.py)."""
    import importlib

    from numba.core.caching import FunctionCache

    found = getattr(importlib.import_module(f"{package}.{module}"), function)
    return Path(FunctionCache(getattr(found, "py_func", found))._cache_file._index_path)


def test_the_index_files_looked_for_are_the_ones_numba_writes() -> None:
    from layerlapse.maps.jitcache import MAP_FUNCTIONS, _index_file
    from layerlapse.maps.umap_learn import import_umap

    import_umap()  # numba reads NUMBA_CACHE_DIR when first imported: the tests' folder
    for function in MAP_FUNCTIONS:
        assert _index_file(*function)[0] == numba_index_path(*function), function


def test_map_code_on_disk_needs_every_index_file_newer_than_its_source(tmp_path: Path, monkeypatch) -> None:
    from layerlapse.maps.jitcache import MAP_FUNCTIONS, _index_file, map_code_on_disk

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert map_code_on_disk() is False  # an empty cache: the first map compiles
    indexes = [_index_file(*function) for function in MAP_FUNCTIONS]
    for index, _ in indexes[:-1]:
        index.parent.mkdir(parents=True, exist_ok=True)
        index.touch()
    assert map_code_on_disk() is False  # umap's layout, compiled last in a fit, is not there yet
    last, source = indexes[-1]
    last.touch()
    assert map_code_on_disk() is True
    older = source.stat().st_mtime - 60
    os.utime(last, (older, older))  # written before its source changed: numba compiles it again
    assert map_code_on_disk() is False


def test_map_code_on_disk_claims_nothing_where_it_cannot_tell(monkeypatch) -> None:
    import layerlapse.maps.jitcache as jitcache

    monkeypatch.setenv("NUMBA_CACHE_DIR", "")  # numba then caches beside the sources, or in a folder of its own
    assert jitcache.map_code_on_disk() is None
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(jitcache, "MAP_FUNCTIONS", (("umap", "layouts", "a_function_umap_does_not_have"),))
    assert jitcache.map_code_on_disk() is None
