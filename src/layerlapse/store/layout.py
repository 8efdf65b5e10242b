"""The run folder's layout: the one place that says which relative paths a run may hold.

A run folder is data from outside. Its manifest names files and layers, and those names become paths, so every name
is checked here before anything is opened, written or deleted: a layer name is one plain path component, a listed
file is a relative path of plain components (no `..`, no absolute path, no hidden part), and the files a killed
writer may leave unlisted are recognised by the layout's own patterns, never by where they are.
"""

from __future__ import annotations

import re

from .atomic import temp_name

MANIFEST = "manifest.json"
LOCK = ".layerlapse-lock"  # held (flock) by the one process writing the run; never listed, never deleted by us
# Folders of recorded data: a killed writer may leave files here that the manifest does not list yet.
RECORDED_FOLDERS = ("probe", "activations", "predictions", "checkpoints", "test", "maps")
# Folders layerlapse makes for drawings and exports; emptied ones are removed with the run by --force.
DRAWN_FOLDERS = ("figures", "frames", "tensorboard", "dynamics", "tables")

_MAX_NAME_BYTES = 200
MAX_CLASS_NAME_CHARS = 1000  # what a run holds (figures shorten long names); a 1 MB name took minutes to draw
_EPOCH = r"epoch_\d{3,}"
_PLAIN = r"[^/\\\x00-\x1f.][^/\\\x00-\x1f]*"  # one component, not hidden: temp files and the lock start with "."
_RECORDED_FILE = re.compile("|".join([
    r"probe/(?:labels|images|indices)\.npy",
    rf"activations/{_PLAIN}/{_EPOCH}\.npy",
    rf"predictions/{_EPOCH}\.npy",
    rf"checkpoints/{_EPOCH}\.pt",
    r"test/(?:labels|predictions)\.npy",
    rf"test/activations/{_PLAIN}\.npy",
    r"test/probe/(?:indices|labels|images)\.npy",
    rf"test/probe/activations/{_PLAIN}/{_EPOCH}\.npy",
    rf"test/probe/predictions/{_EPOCH}\.npy",
    rf"maps/{_PLAIN}/(?:{_EPOCH}\.npy|test\.npy|quality\.json|test/{_EPOCH}\.npy)",
]))
_DRAWN_FILE = re.compile("|".join([
    r"history\.jsonl", r"metrics\.json", r"report\.html", rf"lapse(?:_{_PLAIN})?\.(?:gif|mp4)",
    rf"figures/{_PLAIN}\.png", rf"frames/(?:{_PLAIN}/)?{_EPOCH}\.png", r"dynamics/(?:probe|test_probe)\.npz",
    r"dynamics/layers\.json",
]))
_ACTIVATIONS_FILE = re.compile(
    rf"(?:test/probe/)?activations/({_PLAIN})/{_EPOCH}\.npy|test/activations/({_PLAIN})\.npy")


PROBE_LABELS = "probe/labels.npy"
PROBE_IMAGES = "probe/images.npy"
PROBE_INDICES = "probe/indices.npy"
PROBE_TOKENS = "probe/tokens.json"  # a run of tokens: each point's item, position and token (capture.tokens)
PROBE_TEXTS = "probe/texts.json"  # one text per probe item, where the run was given them (store.texts)
TEST_LABELS = "test/labels.npy"
TEST_PREDICTIONS = "test/predictions.npy"
TEST_PROBE_INDICES = "test/probe/indices.npy"
TEST_PROBE_LABELS = "test/probe/labels.npy"
TEST_PROBE_IMAGES = "test/probe/images.npy"
HISTORY = "history.jsonl"
METRICS = "metrics.json"
REPORT = "report.html"
QUALITY_FILE = "quality.json"
# the probe's per-image dynamics (layerlapse.measures.dynamics), computed by render
DYNAMICS_PROBE = "dynamics/probe.npz"
DYNAMICS_TEST_PROBE = "dynamics/test_probe.npz"  # the same for the test probe, where one was recorded
DYNAMICS_LAYERS = "dynamics/layers.json"  # each layer's measures per snapshot (layerlapse.measures.layers)


def epoch_file(epoch: int, suffix: str = ".npy") -> str:
    return f"epoch_{epoch:03d}{suffix}"


def activations(layer: str, epoch: int) -> str:
    return f"activations/{layer}/{epoch_file(epoch)}"


def predictions(epoch: int) -> str:
    return f"predictions/{epoch_file(epoch)}"


def checkpoint(epoch: int) -> str:
    return f"checkpoints/{epoch_file(epoch, '.pt')}"


def map_folder(layer: str) -> str:
    return f"maps/{layer}"


def map_file(layer: str, epoch: int) -> str:
    return f"maps/{layer}/{epoch_file(epoch)}"


def test_map(layer: str) -> str:
    return f"maps/{layer}/test.npy"


def quality(layer: str) -> str:
    return f"maps/{layer}/{QUALITY_FILE}"


def test_probe_map(layer: str, epoch: int) -> str:
    """The test probe placed on a layer's frame of `epoch`."""
    return f"maps/{layer}/test/{epoch_file(epoch)}"


def test_activations(layer: str) -> str:
    """The final test set's activations of a layer."""
    return f"test/activations/{layer}.npy"


def test_probe_activations(layer: str, epoch: int) -> str:
    return f"test/probe/activations/{layer}/{epoch_file(epoch)}"


def test_probe_predictions(epoch: int) -> str:
    return f"test/probe/predictions/{epoch_file(epoch)}"


def frame(layer_folder: str, epoch: int) -> str:
    """A drawn frame: frames/ for the first layer, frames/<layer>/ for the others."""
    return f"{layer_folder}/{epoch_file(epoch, '.png')}"


def frames_folder(layer: str, main: bool) -> str:
    """The first layer's frames are frames/, the others' frames/<layer>/."""
    return "frames" if main else f"frames/{layer}"


def lapse(layer: str, main: bool, suffix: str) -> str:
    """lapse.gif / lapse.mp4 of the first layer, lapse_<layer>.gif of the others (`suffix` ".gif" or ".mp4")."""
    return f"lapse{suffix}" if main else f"lapse_{layer}{suffix}"


def side_by_side_name(layers: list[str]) -> str:
    """The name of the lapse of every layer side by side: "layers" (lapse_layers.gif), unless a recorded layer has
    that name, whose own lapse is lapse_layers.gif; then "layers_", "layers__", …"""
    name = "layers"
    while name in layers:
        name += "_"
    return name


def side_by_side_frame_name(epoch: int) -> str:
    """The file name, in frames/, of a frame of the side-by-side lapse while its GIF and MP4 are made: a temp name
    with this process's token, never listed (removed after; a killed writer's copy is removed as any temp file is)."""
    return temp_name(f"side-by-side-{epoch_file(epoch, '.png')}")


def figure(name: str, layer: str | None = None) -> str:
    """figures/<name>.png, or figures/<name>_<layer>.png for a layer other than the first."""
    return f"figures/{name}.png" if layer is None else f"figures/{name}_{layer}.png"


def tensorboard(epoch: int | None, layer: str) -> str:
    """Where `export --tensorboard` writes by default: one epoch to tensorboard/epoch_NNN, every snapshot of a layer
    to tensorboard/<layer> (one logdir)."""
    return f"tensorboard/{epoch_file(epoch, '')}" if epoch is not None else f"tensorboard/{layer}"


TABLES = "tables"  # `layerlapse export --parquet` writes here by default


def table_file(layer: str) -> str:
    """A layer's table, named after it (in tables/ or the folder the user gives)."""
    return f"{layer}.parquet"


def plain_name_problem(name: object) -> str | None:
    """Why `name` cannot be one component of a path inside a run folder, or None when it can. The rule for a
    layer's name, at recording and at reading (`store.check_manifest`)."""
    if not isinstance(name, str) or not name:
        return f"{shown(name)} is not a non-empty string"
    if name in (".", "..") or name.startswith("."):
        return f"{shown(name)} starts with a dot"
    if any(char in name for char in "/\\") or any(ord(char) < 32 for char in name):
        return f"{shown(name)} holds a path separator or a control character"
    if len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        return f"{shown(name)} is longer than {_MAX_NAME_BYTES} bytes"
    return None


def class_name_problem(name: object) -> str | None:
    """Why `name` cannot be a class name of a run, or None when it can: the rule at recording and at reading."""
    if not isinstance(name, str):
        return f"{shown(name)} is not text"
    if len(name) > MAX_CLASS_NAME_CHARS:
        return f"it is {len(name):,} characters long, over the {MAX_CLASS_NAME_CHARS:,} a run holds"
    return None


def shown(value: object, at_most: int = 40) -> str:
    """`value` as a message shows it: its repr, cut with '…' past `at_most` characters."""
    text = repr(value)
    return text if len(text) <= at_most else f"{text[:at_most - 1]}…"


def relpath_problem(relpath: object) -> str | None:
    """Why `relpath` is not a path layerlapse may use inside a run folder, or None when it is one."""
    if not isinstance(relpath, str) or not relpath:
        return f"{relpath!r} is not a relative path"
    if relpath.startswith("/"):
        return f"{relpath!r} is an absolute path"
    for part in relpath.split("/"):
        if (problem := plain_name_problem(part)) is not None:
            return f"{relpath!r} is not a plain path inside the run folder ({problem})"
    if relpath in (MANIFEST, LOCK):
        return f"{relpath!r} is the run's own bookkeeping, not a listed file"
    return None


def is_recorded_file(relpath: str) -> bool:
    """Whether `relpath` is a name the recording or the maps write (so an unlisted one is a killed writer's)."""
    return _RECORDED_FILE.fullmatch(relpath) is not None


def is_run_file(relpath: str) -> bool:
    """Whether `relpath` is a name a run writes and lists: recorded data, or a drawing under its default name. Only
    such a file may be deleted with the run (--force), whatever a manifest lists."""
    return is_recorded_file(relpath) or _DRAWN_FILE.fullmatch(relpath) is not None


def activations_layer(relpath: str) -> str | None:
    """The layer whose activations `relpath` holds (probe, test probe or test set), or None for another file."""
    found = _ACTIVATIONS_FILE.fullmatch(relpath)
    return None if found is None else found.group(1) or found.group(2)
