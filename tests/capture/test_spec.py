"""One recording spec: the Recorder and the Lightning, Keras and Hugging Face callbacks take the same parameters in the
same order with the same defaults (`RecordingSpec`'s fields), and each bad one is refused the same way, in one line,
before any training."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
import torch

from layerlapse.capture.recorder import Recorder
from layerlapse.capture.spec import FIELDS, POSITIONAL, RecordingSpec
from layerlapse.errors import ConfigError

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported, as tests/integrations/test_keras.py

RECORDER_ONLY = ("run", "device", "channels_last")  # what only a Recorder in the user's own loop takes, at the end


def callbacks() -> list[type]:
    """The framework callbacks installed here (the dev extras install all three)."""
    found = []
    for module in ("lightning", "keras", "transformers"):
        try:
            found.append(__import__(f"layerlapse.integrations.{module}", fromlist=["x"]).LayerlapseCallback)
        except ImportError:
            pass
    return found


def spec_part(front_end: type) -> list[tuple[str, object, object]]:
    """(name, kind, default) of each parameter a front end takes of the spec, in order."""
    parameters = list(inspect.signature(front_end).parameters.values())
    if front_end is Recorder:
        assert parameters[0].name == "model" and [p.name for p in parameters[-3:]] == list(RECORDER_ONLY)
        parameters = parameters[1:-3]
    return [(p.name, p.kind, p.default) for p in parameters]


def test_every_front_end_takes_the_spec_in_one_order() -> None:
    expected = [(field, inspect.Parameter.POSITIONAL_OR_KEYWORD if field in POSITIONAL
                 else inspect.Parameter.KEYWORD_ONLY, default)
                for field, default in zip(FIELDS, (inspect.signature(RecordingSpec).parameters[f].default
                                                   for f in FIELDS))]
    expected[:2] = [(name, kind, inspect.Parameter.empty) for name, kind, _ in expected[:2]]  # layers, probe: needed
    front_ends = [Recorder, *callbacks()]
    assert len(front_ends) == 4, "the dev extras install lightning, keras and transformers"
    for front_end in front_ends:
        assert spec_part(front_end) == expected, front_end.__module__


def test_every_front_end_documents_every_parameter() -> None:
    """An editor's hover over any of them lists each parameter (numpy style, as the API reference renders it)."""
    for documented in (RecordingSpec, Recorder):
        text = inspect.getdoc(documented)
        for name in (*FIELDS, *(RECORDER_ONLY if documented is Recorder else ())):
            assert f"\n{name} :" in f"\n{text}" or f", {name} :" in text or f"\n{name}, " in f"\n{text}", \
                (documented.__name__, name)


def test_every_callback_names_every_parameter_of_the_spec() -> None:
    for callback in callbacks():
        named = inspect.getdoc(callback).split("Parameters\n----------\n")[1]
        entries = [line.split(" : ")[0] for line in named.splitlines() if " : " in line and not line.startswith(" ")]
        assert [name for entry in entries for name in entry.split(", ")] == list(FIELDS), callback.__module__


def test_the_spec_is_frozen_and_normalised(tmp_path: Path) -> None:
    spec = RecordingSpec(["fc1", "fc2", "fc1"], torch.zeros(4, 2), out=tmp_path / "run", class_names=[0, 1])
    assert spec.layers == ("fc1", "fc2") and spec.out == str(tmp_path / "run") and spec.class_names == ("0", "1")
    assert spec.reductions == {"fc1": "flatten", "fc2": "flatten"} and spec.outputs == {"fc1": None, "fc2": None}
    with pytest.raises(AttributeError):
        spec.every = 5  # type: ignore[misc]
    assert spec.replace(every="log").schedule.by_steps and not spec.schedule.by_steps
    assert RecordingSpec.from_arguments({**spec.arguments(), "model": None}).arguments() == spec.arguments()
    assert repr(spec) == f"RecordingSpec(layers=['fc1', 'fc2'], out={str(tmp_path / 'run')!r}, every epoch)"


@pytest.mark.parametrize(("changes", "message"), [
    ({"layers": []}, r"^layers must name at least one layer, as a name or a list of names, got \[\]: e\.g\. "
                     r"layers=\['fc1'\]$"),
    ({"every": 0}, r"^every must be 'epoch', 'log' or a whole number of optimizer steps of at least 1, got 0$"),
    ({"batch_size": 0}, r"^batch_size must be a whole number of at least 1, got 0$"),
    ({"reduce": {"fc9": "mean"}}, r"^reduce names layers that are not recorded \('fc9'\): give it for the recorded "
                                  r"layers \['fc1'\]$"),
    ({"reduce": "avg"}, r"^reduce for layer 'fc1' must be one of flatten, mean, first, last, tokens, got 'avg'$"),
    ({"output": {"fc2": 0}}, r"^output names layers that are not recorded \('fc2'\)"),
    ({"test_labels": [0, 1]}, r"^test_labels were given without the test set: pass test_set=\.\.\. \(its inputs\) "
                              r"as well$"),
    ({"test_probe_labels": [0]}, r"^test_probe_labels were given without the test probe: pass test_probe=\.\.\."),
    ({"labels": "runs/mine"}, r"^labels is 'runs/mine', text where class indices go: the run folder is the fourth "
                              r"argument, \(layers, probe, labels, out\), or out=\.\.\.$"),
])
def test_a_bad_setting_is_one_line_from_every_front_end(changes: dict, message: str, tmp_path: Path) -> None:
    arguments = {"layers": ["fc1"], "probe": torch.zeros(4, 2), "out": str(tmp_path / "run"), **changes}
    model = torch.nn.Sequential()
    model.add_module("fc1", torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match=message):
        RecordingSpec(**arguments)
    with pytest.raises(ConfigError, match=message):
        Recorder(model, **arguments)
    for callback in callbacks():
        with pytest.raises(ConfigError, match=message):
            callback(**arguments)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_callback_without_a_run_folder_says_to_name_one() -> None:
    for callback in callbacks():
        with pytest.raises(ConfigError, match=r'^the layerlapse callback needs a run folder to record into: pass '
                                              r'out="runs/NAME"$'):
            callback(["fc1"], torch.zeros(4, 2), [0, 1, 0, 1])
