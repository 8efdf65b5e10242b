"""layerlapse: a time-lapse of a neural network's hidden representations while it learns.

Public names are re-exported lazily so that `import layerlapse` (and `layerlapse --help`) stays fast: torch and
umap-learn load only when a name that needs them is first used.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "config",
    "LayerlapseError": "errors",
    "LayerlapseWarning": "errors",
    "load_dataset": "reference.data",
    "Dataset": "reference.data",
    "ReferenceCNN": "reference.models",
    "Recorder": "capture",
    "RecordingSpec": "capture",
    "layer_table": "capture",
    "RecordingSession": "capture",
    "record_run": "reference.train",
    "RunFolder": "store.run",
    "load_run": "store.run",
    "umap_map": "maps.project",
    "map_epochs": "maps.project",
    "EpochMapper": "maps.project",
    "place_points": "maps.project",
    "frame_quality": "maps.faithfulness",
    "change_quality": "maps.faithfulness",
    "render_run": "recipe.steps",
    "map_run": "recipe.mapping",
    "run_experiment": "reference.experiment",
    "export_tensorboard": "export.tensorboard",
    "write_report": "report.page",
    "watch_run": "watch.server",
    "compare": "comparison.writing",
    "sample_dynamics": "measures.dynamics",
    "probe_dynamics": "measures.dynamics",
    "test_probe_dynamics": "measures.dynamics",
    "layer_measures": "measures.layers",
    "linear_cka": "measures.representation",
    "yield_cores_while_mapping": "capture.session",
    "show": "notebook",
    "LapseWidget": "notebook.widget",
    "selection_table": "notebook.selection",
}

__all__ = [*_EXPORTS, "__version__"]


def __dir__() -> list[str]:
    """The public names (lazy, so an editor's completion and `dir(layerlapse)` list them before their first use)."""
    return sorted([*__all__, *(name for name in globals() if name.startswith("__"))])


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'layerlapse' has no attribute {name!r}")


def _register_notebook_display() -> None:
    """In IPython (a notebook's kernel), a RunFolder displays as the notebook widget: a formatter registered by
    name, so neither the store (which stands below the notebook in the import rules) nor this import loads the
    notebook's packages; they load when a run is first displayed."""
    import sys

    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    formatter = getattr(getattr(shell, "display_formatter", None), "mimebundle_formatter", None)
    if formatter is not None:
        formatter.for_type_by_name("layerlapse.store.run", "RunFolder",
                                   lambda run: import_module(".notebook", __name__).run_display(run))


_register_notebook_display()
