"""layerlapse: a time-lapse of a neural network's hidden representations while it learns.

Public names are re-exported lazily so that `import layerlapse` (and `layerlapse --help`) stays fast: torch and
umap-learn load only when a name that needs them is first used.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "config",
    "LayerlapseError": "errors",
    "load_dataset": "data",
    "Dataset": "data",
    "ReferenceCNN": "models",
    "Recorder": "capture",
    "layer_table": "capture",
    "RecordingSession": "capture",
    "record_run": "train",
    "RunFolder": "store",
    "load_run": "store",
    "umap_map": "project",
    "map_epochs": "project",
    "EpochMapper": "project",
    "place_points": "project",
    "frame_quality": "metrics",
    "change_quality": "metrics",
    "render_run": "pipeline",
    "map_run": "pipeline",
    "run_experiment": "pipeline",
    "export_tensorboard": "export",
    "write_report": "report",
    "sample_dynamics": "dynamics",
    "probe_dynamics": "dynamics",
    "test_probe_dynamics": "dynamics",
    "layer_measures": "measures",
    "linear_cka": "representation",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'layerlapse' has no attribute {name!r}")
