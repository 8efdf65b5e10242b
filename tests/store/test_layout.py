"""The run folder's layout: which names may become paths inside a run."""

import pytest

from layerlapse.store import layout
from layerlapse.store.layout import is_recorded_file, plain_name_problem, relpath_problem


@pytest.mark.parametrize("name", ["hidden", "conv2D_1", "layer1.0.conv1", "encoder.layers.11", "β-layer"])
def test_layer_names_of_real_models_are_plain(name: str) -> None:
    assert plain_name_problem(name) is None


@pytest.mark.parametrize(("name", "why"), [
    ("..", "starts with a dot"), (".hidden", "starts with a dot"), ("a/b", "path separator"),
    ("a\\b", "path separator"), ("a\nb", "control character"), ("", "not a non-empty string"),
    (5, "not a non-empty string"), ("x" * 201, "longer than 200 bytes"),
])
def test_names_that_are_paths_or_hidden_are_refused(name: object, why: str) -> None:
    assert why in plain_name_problem(name)


@pytest.mark.parametrize("relpath", ["maps/hidden/epoch_000.npy", "report.html", "frames/layer1.0/epoch_012.png"])
def test_plain_relative_paths_are_allowed(relpath: str) -> None:
    assert relpath_problem(relpath) is None


@pytest.mark.parametrize(("relpath", "why"), [
    ("maps/../../outside/victim.txt", "starts with a dot"), ("/etc/passwd", "absolute path"),
    ("maps//epoch_000.npy", "not a non-empty string"), ("manifest.json", "bookkeeping"),
    (".layerlapse-lock", "starts with a dot"), (None, "not a relative path"),
])
def test_paths_that_leave_the_run_or_touch_its_bookkeeping_are_refused(relpath: object, why: str) -> None:
    assert why in relpath_problem(relpath)


@pytest.mark.parametrize(("relpath", "recorded"), [
    ("activations/hidden/epoch_003.npy", True), ("activations/layer1.0/epoch_1000.npy", True),
    ("checkpoints/epoch_002.pt", True), ("test/probe/activations/hidden/epoch_000.npy", True),
    ("maps/hidden/quality.json", True), ("maps/hidden/test/epoch_001.npy", True), ("probe/labels.npy", True),
    ("activations/notes.txt", False), ("activations/hidden/epoch_3.npy", False), ("test/mine.csv", False),
    ("maps/.old-hidden/epoch_000.npy", False), ("frames/epoch_000.png", False),
])
def test_only_names_the_recording_writes_count_as_recorded(relpath: str, recorded: bool) -> None:
    assert is_recorded_file(relpath) is recorded


def test_the_side_by_side_lapse_never_takes_a_recorded_layers_name() -> None:
    assert layout.side_by_side_name(["hidden", "end"]) == "layers"
    assert layout.side_by_side_name(["layers", "layers_"]) == "layers__"
    assert layout.lapse(layout.side_by_side_name(["layers"]), False, ".gif") != layout.lapse("layers", False, ".gif")


@pytest.mark.parametrize(("relpath", "written"), [
    ("activations/hidden/epoch_003.npy", True), ("figures/train_test_flat1.png", True), ("frames/epoch_000.png", True),
    ("frames/layer1.0/epoch_012.png", True), ("lapse.gif", True), ("lapse_layer1.0.mp4", True),
    ("dynamics/layers.json", True), ("report.html", True), ("history.jsonl", True),
    ("bin/sh", False), ("etc/passwd", False), ("notes/mine.txt", False), ("my-report.html", False),
    ("frames/epoch_000.jpg", False), ("figures/sub/x.png", False), ("lapse.gif.bak", False),
])
def test_only_names_a_run_writes_count_as_its_files(relpath: str, written: bool) -> None:
    assert layout.is_run_file(relpath) is written


@pytest.mark.parametrize(("relpath", "layer"), [
    ("activations/layer1.0/epoch_000.npy", "layer1.0"), ("test/activations/hidden.npy", "hidden"),
    ("test/probe/activations/end/epoch_002.npy", "end"), ("maps/hidden/epoch_000.npy", None),
    ("predictions/epoch_000.npy", None),
])
def test_activation_files_name_their_layer(relpath: str, layer: str | None) -> None:
    assert layout.activations_layer(relpath) == layer


@pytest.mark.parametrize(("name", "why"), [
    ("b" * 1001, "it is 1,001 characters long, over the 1,000 a run holds"), (7, "7 is not text"),
])
def test_class_names_a_run_cannot_hold(name: object, why: str) -> None:
    assert layout.class_name_problem(name) == why
    assert layout.class_name_problem("T-shirt/top") is None and layout.class_name_problem("") is None
