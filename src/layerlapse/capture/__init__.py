"""Capture: what chosen layers output for a fixed probe (torch hooks, `recorder`), the probe's forms (`probe`), and
the framework-free recording session every way of training shares (`session`). Names load lazily, so the session
can be used (by the Keras callback) without importing torch."""

from importlib import import_module

_EXPORTS = {
    "Recorder": "recorder", "Snapshot": "recorder", "find_layers": "layers", "layer_table": "listing",
    "stratified_probe": "inputs", "own_run_config": "recorder",
    "ProbeInputs": "probe",
    "RecordingSpec": "spec", "RankShares": "shares",
    "RecordingSession": "session", "Schedule": "spec", "Captured": "session", "Inputs": "session",
}

__all__ = [name for name in _EXPORTS if not name.startswith("_")]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'layerlapse.capture' has no attribute {name!r}")
