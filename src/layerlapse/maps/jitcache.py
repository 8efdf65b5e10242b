"""Numba's on-disk cache for the jitted functions of umap-learn and pynndescent.

Most of their ``@njit`` functions are declared without ``cache=True`` (the costly ones deliberately: the parallel
ones after segfaults in older numba, pynndescent#175; those that take the distance function as an argument because
such a call never hit the cache, pynndescent#226), so every new Python process compiles them again: the first
nearest-neighbour search or layout in a fresh process spends a minute or more in numba even with NUMBA_CACHE_DIR set.

:func:`enable_disk_cache`, called after ``import umap`` and ``import pynndescent`` and before they compile anything,
gives their module-level dispatchers numba's file cache (in NUMBA_CACHE_DIR, else ``__pycache__`` beside the source):

* The parallel ones too, but only on a numba whose cached code re-initialises the thread pool also when a cached
  function merely calls a parallel one (``CodeLibrary._reload_init``; numba#8578); on an older numba it does nothing.
* A signature whose arguments include a jitted function (pynndescent passes its distance) is cached only when that
  function is one of these module-level dispatchers: each is given a stable serialisation id (its module, name and
  source file's stamp), since numba's cache key holds the function object and so never matched in a new process.
  Any other such signature (a user's own metric) compiles as before instead of adding a file per run.
* The cache key also holds the jit options, as two dispatchers may share one Python function (umap's serial and
  parallel layout epoch) and numba's key would not tell them apart.
* Closures, functions that already cache, and any function numba cannot place a cache file for are left alone.
* Still compiled in every process: code that calls ``numba.get_num_threads()`` (a ctypes pointer, which numba will not
  save: pynndescent's ``nn_descent`` and ``nn_descent_internal``, ~10 s) and functions compiled at import.

Anything unexpected in numba's internals (another version) means no cache, never an error.

:func:`map_code_on_disk` tells, without importing numba or umap, whether the cache already holds the map's code, so
a first run can say why it waits.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from .._util.paths import cache_root

_PACKAGES = ("umap", "pynndescent")
# What a first map compiles, about a minute between them (measured: pynndescent's trees 13 s at import, umap's fit
# 15 s, a quiet 2-core machine): two functions of each package, (package, module, function), found by numba's
# file names. umap's layout is compiled last in a fit, so its index file appears only once the compiling is done.
MAP_FUNCTIONS = (("pynndescent", "rp_trees", "make_euclidean_tree"), ("pynndescent", "rp_trees", "search_flat_tree"),
                 ("umap", "umap_", "smooth_knn_dist"), ("umap", "layouts", "_optimize_layout_euclidean_single_epoch"))


def enable_disk_cache() -> int:
    """Turn on numba's disk cache for umap's and pynndescent's jitted functions; return how many were enabled."""
    try:
        from numba.core import codegen, types
        from numba.core.caching import FunctionCache, NullCache
        from numba.core.dispatcher import Dispatcher

        if "_reload_init" not in codegen.CodeLibrary.__init__.__code__.co_names:
            return 0
    except Exception:
        return 0

    found: dict[int, Dispatcher] = {}
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in _PACKAGES and module is not None:
            for obj in list(vars(module).values()):
                if isinstance(obj, Dispatcher):
                    found.setdefault(id(obj), obj)

    stable: set[int] = set()  # dispatchers that pickle to the same key in every process
    for dispatcher in found.values():
        try:
            func = dispatcher.py_func
            names = sorted(k for k, v in vars(sys.modules[func.__module__]).items() if v is dispatcher)
            stat = os.stat(func.__code__.co_filename)
            uuid = f"layerlapse.jitcache:{func.__module__}.{names[0]}:{stat.st_mtime_ns}:{stat.st_size}"
            if dispatcher._MemoMixin__uuid is None and uuid not in Dispatcher._memo:
                dispatcher._set_uuid(uuid)
            if dispatcher._MemoMixin__uuid == uuid:
                stable.add(id(dispatcher))
        except Exception:
            continue

    def cacheable(sig) -> bool:  # False: a key that would never match in another process
        todo = list(getattr(sig, "args", sig))
        while todo:
            t = todo.pop()
            value = t.dispatcher if isinstance(t, types.Dispatcher) else getattr(t, "value", None)
            if (isinstance(t, types.Function) or (isinstance(value, Dispatcher) and id(value) not in stable)
                    or (isinstance(t, types.Omitted) and not isinstance(value, (type(None), bool, int, float, str,
                                                                                Dispatcher)))):
                return False
            todo.extend(getattr(t, "types", ()))
        return True

    class SafeCache(FunctionCache):  # a cache problem means compiling as before, never an error
        def __init__(self, dispatcher):
            super().__init__(dispatcher.py_func)
            self._jit_options = repr(sorted((k, sorted(v) if isinstance(v, (set, frozenset)) else v)
                                            for k, v in dispatcher.targetoptions.items()))

        def _index_key(self, sig, codegen):
            return super()._index_key(sig, codegen) + (self._jit_options,)

        def load_overload(self, sig, target_context):
            try:
                return super().load_overload(sig, target_context) if cacheable(sig) else None
            except Exception:
                return None

        def save_overload(self, sig, data):
            try:  # code holding a process's addresses (numba.get_num_threads() does) is not saved; numba would warn
                if cacheable(sig) and not data.library.has_dynamic_globals:
                    super().save_overload(sig, data)
            except Exception:
                pass

    enabled = 0
    for dispatcher in found.values():
        try:
            func = dispatcher.py_func
            if (type(dispatcher._cache) is not NullCache or func.__closure__ is not None
                    or str(func.__module__).partition(".")[0] not in _PACKAGES):
                continue
            dispatcher._cache = SafeCache(dispatcher)  # what Dispatcher.enable_caching() does, plus the above
            enabled += 1
        except Exception:  # e.g. no place for this file's cache: leave it uncached
            continue
    return enabled


def map_code_on_disk() -> bool | None:
    """Whether numba's disk cache holds the map's compiled code (MAP_FUNCTIONS' index files, none older than its
    source: numba discards an index whose source changed since). False: the next map compiles it, about a minute.
    None: cannot tell (a package or function not found, NUMBA_CACHE_DIR set empty), so nothing should be claimed."""
    found = [_index_file(*function) for function in MAP_FUNCTIONS]
    if None in found:
        return None
    return all(index.is_file() and index.stat().st_mtime >= source.stat().st_mtime for index, source in found)


def _index_file(package: str, module: str, function: str) -> tuple[Path, Path] | None:
    """Where numba keeps the index of `function`'s compiled code (numba.core.caching's file names), and its source."""
    package_folder = _package_folder(package)
    folder = None if package_folder is None else _cache_folder(package_folder)
    if folder is None:
        return None
    source = package_folder / f"{module}.py"
    line = _first_line(source, function)
    if line is None:
        return None
    python = f"py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}"
    return folder / f"{module}.{function}-{line}.{python}.nbi", source


def _cache_folder(package_folder: Path) -> Path | None:
    """numba's cache folder for a package's files: <NUMBA_CACHE_DIR>/<package folder's name>_<sha1 of its path>.
    NUMBA_CACHE_DIR as umap_learn.import_umap leaves it (layerlapse's own folder when unset); set empty, numba writes
    beside the sources or elsewhere, so None."""
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if chosen == "":
        return None
    root = Path(chosen) if chosen else cache_root() / "numba"
    return root / f"{package_folder.name}_{hashlib.sha1(str(package_folder).encode()).hexdigest()}"


def _package_folder(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)  # finds without importing it (umap takes seconds)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(os.path.abspath(spec.origin)).parent


def _first_line(source: Path, function: str) -> int | None:
    """The line numba names the function's files by (its code's first line: the first decorator's, if any)."""
    try:
        tree = ast.parse(source.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
    return None
