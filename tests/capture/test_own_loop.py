"""Recording from a user's own PyTorch loop: their model, their data, their layers, with real files and real maps.

An MLP on Fashion-MNIST and a ResNet-style net (BatchNorm, nested blocks, a GRU that returns a tuple) each record two
layers with a DataLoader probe and test images; the probe's forms, the output's forms, the reductions, float16
overflow, snapshot schedules and their order, nan metrics and the one-line errors for bad input.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from layerlapse import Recorder, RunConfig, load_run
from layerlapse.errors import ConfigError, LayerNotFoundError, RecordingWarning, RunFolderError
from layerlapse.store.run import RunFolder

CLASSES = [str(digit) for digit in range(10)]


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.images / 16, dtype=torch.float32).unsqueeze(1), torch.tensor(data.target)


class Block(nn.Module):
    """A residual block: conv, BatchNorm, skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn(self.conv(x)))


class ResNetish(nn.Module):
    """Conv stem, two nested residual blocks, a GRU over the 8×8 positions (returns a tuple), a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.blocks = nn.Sequential(Block(8), Block(8))
        self.gru = nn.GRU(8, 16, batch_first=True)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.stem(x))
        sequence, _ = self.gru(features.flatten(2).transpose(1, 2))
        return self.head(sequence[:, -1])


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer) -> float:
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    return loss.item()


def test_a_resnet_style_net_records_a_nested_block_and_a_tuple_returning_gru(digits, tmp_path: Path) -> None:
    torch.manual_seed(0)
    x, y = digits
    train, test = TensorDataset(x[:600], y[:600]), TensorDataset(x[1500:1700], y[1500:1700])
    model = ResNetish()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(train, batch_size=50, shuffle=True)
    recorder = Recorder(model, ["blocks.1", "gru"], DataLoader(train, batch_size=128), out=tmp_path / "run",
                        class_names=CLASSES, dataset="digits-resnet", test_probe=test, test_set=test,
                        reduce={"blocks.1": "mean", "gru": "mean"},
                        training={"batch_size": 50, "learning_rate": 3e-3, "optimizer": "Adam"})
    recorder.start()
    for epoch in (1, 2):
        recorder.epoch_end(epoch, metrics={"loss": train_epoch(model, loader, optimizer)})
    run = recorder.finish()
    assert run.status == "complete" and run.epochs_complete == 2
    info = run.manifest["layer_info"]
    assert info["blocks.1"]["shape"] == [8, 8, 8] and info["blocks.1"]["columns"] == 8  # mean over the 8×8 space
    assert info["blocks.1"]["caption"] == "mean over space"
    assert info["gru"]["shape"] == [64, 16] and info["gru"]["columns"] == 16  # the GRU's first output, over steps
    assert info["gru"]["caption"] == "mean over steps" and info["gru"]["output"] == "first tensor"
    assert run.activations("gru", 2).shape == (600, 16)
    assert run.manifest["config"]["loop"] == "own" and run.manifest["config"]["dataset"] == "digits-resnet"
    assert run.manifest["config"]["batch_size"] == 50 and run.manifest["training"]["optimizer"] == "Adam"
    assert run.manifest["test"]["size"] == 200 and 0 <= run.manifest["test"]["accuracy"] <= 1
    for relpath in ("lapse.gif", "frames/epoch_002.png", "frames/gru/epoch_002.png", "figures/train_test.png",
                    "figures/confusion.png", "report.html", "maps/gru/test/epoch_002.npy"):
        assert (run.path / relpath).is_file(), relpath
    # the test probe was placed on every frame, and the report offers it
    assert "test points" in (run.path / "report.html").read_text()


def test_an_mlp_on_fashion_mnist_records_two_layers_with_loader_probe_and_test_images(tmp_path: Path) -> None:
    from layerlapse.reference.data import load_dataset

    try:
        data = load_dataset("fashion-mnist", download=False)
    except Exception as error:  # noqa: BLE001 - the Debian package may be missing on a developer's machine
        pytest.skip(f"Fashion-MNIST is not installed here ({error}): apt-get install dataset-fashion-mnist")
    torch.manual_seed(0)
    x_train = torch.from_numpy(data.x_train[:3000]).float().div(255).reshape(-1, 784)
    y_train = torch.from_numpy(data.y_train[:3000]).long()
    x_test = torch.from_numpy(data.x_test[:500]).float().div(255).reshape(-1, 784)
    y_test = torch.from_numpy(data.y_test[:500]).long()
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
    probe = DataLoader(TensorDataset(x_train[:400], y_train[:400]), batch_size=200)
    recorder = Recorder(model, ["1", "3"], probe, out=tmp_path / "fashion", class_names=list(data.class_names),
                        dataset="fashion-mnist (mine)", test_probe=TensorDataset(x_test[:200], y_test[:200]),
                        test_set=DataLoader(TensorDataset(x_test, y_test), batch_size=250))
    recorder.start()
    for epoch in (1, 2):
        recorder.epoch_end(epoch, metrics={"loss": train_epoch(model, loader, optimizer)})
    run = recorder.finish()
    assert run.status == "complete" and run.class_names[0] == data.class_names[0]
    np.testing.assert_array_equal(run.probe_labels(), y_train[:400].numpy())
    assert run.activations("1", 0).shape == (400, 128) and run.activations("3", 2).shape == (400, 64)
    assert run.manifest["test"]["size"] == 500 and run.manifest["test"]["accuracy"] > 0.5
    assert not run.has("probe/images.npy")  # flat 784-vectors are not drawn as thumbnails
    assert (run.path / "frames" / "3" / "epoch_002.png").is_file()


def test_probe_forms_give_the_same_activations(digits) -> None:
    """A tensor, an array, a tuple, a dict, a Dataset and a DataLoader of the same inputs record the same rows."""
    x, y = digits

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, images: torch.Tensor, scale: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
            return {"logits": self.body(images if scale is None else images * scale)}

    torch.manual_seed(0)
    model = Wrapped()
    ones = torch.ones(100, 1, 1, 1)
    forms = [x[:100], x[:100].numpy(), (x[:100], ones), {"images": x[:100], "scale": ones},
             TensorDataset(x[:100], y[:100]), DataLoader(TensorDataset(x[:100], y[:100]), batch_size=33)]
    rows = []
    for form in forms:
        with Recorder(model, ["body.1"], form, batch_size=40) as recorder:
            snapshot = recorder.snapshot(0)
            rows.append(snapshot.activations["body.1"])
            assert snapshot.probabilities.shape == (100, 10)  # from the dict's "logits"
    for other in rows[1:]:
        np.testing.assert_array_equal(rows[0], other)


def test_labels_come_from_a_loader_that_yields_them(digits) -> None:
    x, y = digits
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    recorder = Recorder(model, ["1"], DataLoader(TensorDataset(x[:90], y[:90]), batch_size=40))
    np.testing.assert_array_equal(recorder.labels, y[:90].numpy())


def test_a_selected_output_and_the_first_token(tmp_path: Path) -> None:
    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(20, 8)
            self.rnn = nn.GRU(8, 6, batch_first=True)
            self.head = nn.Linear(6, 3)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            sequence, _ = self.rnn(self.embed(tokens))
            return self.head(sequence[:, 0])

    torch.manual_seed(0)
    tokens = torch.randint(0, 20, (50, 7))
    model = Encoder()
    with pytest.warns(RecordingWarning, match=r"reduce='first' records recurrent layer 'rnn' after its first step"), \
            Recorder(model, ["rnn", "embed"], tokens, output={"rnn": 0}, reduce="first") as recorder:
        snapshot = recorder.snapshot(0)
    sequence = model.rnn(model.embed(tokens))[0]  # (50, 7, 6): the GRU's first output, one row per token
    assert snapshot.activations["rnn"].shape == (50, 6)
    np.testing.assert_allclose(snapshot.activations["rnn"], sequence[:, 0].detach().numpy(), atol=1e-3)
    np.testing.assert_allclose(snapshot.activations["embed"], model.embed(tokens)[:, 0].detach().numpy(), atol=1e-3)
    with pytest.raises(ConfigError, match=r"the output of layer 'rnn' has no entry 5: it holds a tuple of 2"):
        with Recorder(model, ["rnn"], tokens, output=5) as recorder:
            recorder.snapshot(0)
    # the GRU's second output is its hidden state, (layers, N, 6): not one row per input, and said so
    with pytest.raises(ConfigError, match=r"^the selected output of layer 'rnn' has shape \(1, 50, 6\): a recurrent "
                                          r"layer's hidden state is \(layers, batch, features\); record its sequence"):
        with Recorder(model, ["rnn"], tokens, output=1) as recorder:
            recorder.snapshot(0)


def test_first_token_of_a_conv_map_is_refused_with_the_fix() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    with pytest.raises(ConfigError, match=r"reduce='first' takes the first token .* layer '0' outputs \(4, 6, 6\) "
                                          r"per input: use reduce='mean' or 'flatten'"):
        with Recorder(model, ["0"], torch.zeros(5, 1, 8, 8), reduce="first") as recorder:
            recorder.snapshot(0)


def test_activations_that_overflow_float16_are_stored_as_float32(tmp_path: Path) -> None:
    """Values near 1e6 became inf in float16 before; now the layer is float32 and every value survives."""
    model = nn.Sequential(nn.Linear(4, 256), nn.Linear(256, 2))
    with torch.no_grad():
        model[0].weight.fill_(1e5)
        model[0].bias.zero_()
    probe = torch.rand(100, 4) + 1.0  # 4e5 to 8e5 per unit
    recorder = Recorder(model, ["0", "1"], probe, labels=np.arange(100) % 2, out=tmp_path / "run",
                        class_names=["a", "b"], draw=False)
    recorder.start()
    run = recorder.finish()
    big = run.activations("0", 0)
    assert big.dtype == np.float32 and np.isfinite(big).all()
    np.testing.assert_allclose(big, model[0](probe).detach().numpy(), rtol=1e-6)
    assert run.manifest["layer_info"]["0"]["dtype"] == "float32"


def test_step_schedules_label_snapshots_by_step(digits, tmp_path: Path) -> None:
    x, y = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = Recorder(model, ["1"], x[:200], labels=y[:200], out=tmp_path / "log", class_names=CLASSES,
                        every="log", draw=False)
    recorder.start()
    step = 0
    for epoch in (1, 2):
        for start in range(0, 400, 40):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[start:start + 40]), y[start:start + 40]).backward()
            optimizer.step()
            step += 1
            recorder.step_end(step, epoch=epoch)
        recorder.epoch_end(epoch, metrics={"loss": 1.0 / epoch})
    run = recorder.finish()
    assert [label["step"] for label in run.manifest["snapshots"]] == [0, 1, 2, 4, 8, 16]
    assert run.snapshot_title(5) == "Step 16 · epoch 2" and run.snapshot_title(0) == "Step 0 · epoch 0"
    every = Recorder(model, ["1"], x[:200], labels=y[:200], out=tmp_path / "every", class_names=CLASSES, every=5,
                     draw=False)
    every.start()
    for step in range(1, 13):
        every.step_end(step, epoch=1)
    assert [label["step"] for label in every.finish().manifest["snapshots"]] == [0, 5, 10]


def test_snapshots_that_repeat_or_go_back_are_refused_and_nothing_is_lost(digits, tmp_path: Path) -> None:
    x, y = digits
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    recorder = Recorder(model, ["1"], x[:100], labels=y[:100], out=tmp_path / "run", class_names=CLASSES, draw=False)
    recorder.snapshot(0)
    recorder.snapshot(2)
    before = json.loads((tmp_path / "run" / "manifest.json").read_text())
    with pytest.raises(RunFolderError, match=r"^epoch 2 is already recorded \(snapshot 1\) in .*: record each epoch "
                                             r"once, or start a new run \(force=True\) to record it again$"):
        recorder.snapshot(2)
    with pytest.raises(RunFolderError, match=r"^a snapshot at epoch 1 comes after epoch 2 in .*: snapshots go "
                                             r"forward in training; record them in order$"):
        recorder.snapshot(1)
    after = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert after["files"] == before["files"] and after["epochs_complete"] == 1
    assert after["snapshots"] == [{"epoch": 0}, {"epoch": 2}]  # epoch 1 was skipped: frames say "Epoch 2"
    assert RunFolder.open(tmp_path / "run").snapshot_title(1) == "Epoch 2"


def test_an_epoch_end_that_repeats_or_goes_back_is_an_error_not_a_silent_drop(digits, tmp_path: Path) -> None:
    x, y = digits
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    recorder = Recorder(model, ["1"], x[:100], labels=y[:100], out=tmp_path / "run", class_names=CLASSES, draw=False)
    recorder.start()
    assert recorder.epoch_end(1, metrics={"loss": 1.0})
    before = (tmp_path / "run" / "manifest.json").read_bytes()
    with pytest.raises(RunFolderError, match=r"^epoch 1 is already recorded \(snapshot 1\) in .*: record each epoch "
                                             r"once, or start a new run \(force=True\) to record it again$"):
        recorder.epoch_end(1, metrics={"loss": 0.5})
    with pytest.raises(RunFolderError, match=r"^a snapshot at epoch 0 comes after epoch 1 in .*: snapshots go "
                                             r"forward in training; record them in order$"):
        recorder.epoch_end(0, metrics={"loss": 0.25})
    assert (tmp_path / "run" / "manifest.json").read_bytes() == before  # the run as it was
    recorder.close()


def test_a_step_runs_history_says_snapshot_step_and_epoch_each_for_what_it_is(digits, tmp_path: Path) -> None:
    # 2 epochs of 10 steps, a snapshot every 3 steps: the epoch ends (steps 10 and 20) fall between snapshots, and
    # the last step is not due, so finish(step=20) takes a last snapshot there
    from layerlapse.report import content as report_content
    from layerlapse.report import page, panels

    x, y = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = Recorder(model, ["1"], x[:200], labels=y[:200], out=tmp_path / "run", class_names=CLASSES, every=3)
    recorder.start()
    step = 0
    for epoch in (1, 2):
        for start in range(0, 400, 40):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[start:start + 40]), y[start:start + 40])
            loss.backward()
            optimizer.step()
            step += 1
            recorder.step_end(step, epoch=epoch, metrics={"loss": loss.item()})
        recorder.epoch_end(epoch, metrics={"val_acc": 0.5 * epoch})
    run = recorder.finish(step=step, epoch=2)
    steps = [0, 3, 6, 9, 12, 15, 18, 20]
    assert [label["step"] for label in run.manifest["snapshots"]] == steps
    history = run.history
    assert [row.get("snapshot") for row in history] == [1, 2, 3, None, 4, 5, 6, 7]  # 0 is untrained: no metrics
    assert [row["step"] for row in history] == [3, 6, 9, 10, 12, 15, 18, 20]
    assert [row["epoch"] for row in history] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert history[3] == {"step": 10, "epoch": 1, "val_acc": 0.5, "epoch_end": 1}  # between snapshots 3 and 4
    assert history[7] == {"snapshot": 7, "step": 20, "epoch": 2, "val_acc": 1.0, "epoch_end": 2}  # the final one
    assert all(set(row) - {"snapshot", "step", "epoch", "epoch_end"} for row in history)  # no empty row
    stored = [json.loads(line) for line in (run.path / "history.jsonl").read_text().splitlines()]
    assert stored == history
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["history"] == history
    # the report's curves and curves.png both put the rows at their optimizer step, and say so
    content = report_content.read_content(run, run.layers)
    curves = panels.curve_figures(content.history, content.curve_axis, content.epochs)
    assert [plot.xaxis[0].axis_label for plot, _ in curves] == ["optimizer step"] * 2
    # each metric through the rows that hold it: validation accuracy at the epochs' ends, the loss at the snapshots
    assert [list(plot.renderers[0].data_source.data["x"]) for plot, _ in curves] == [[10, 20], [3, 6, 9, 12, 15, 18]]
    assert page.page_payload((run.path / "report.html").read_text())["curveX"] == steps  # the marker's places


def test_a_nan_metric_is_stored_as_null_with_a_note(digits, tmp_path: Path) -> None:
    x, y = digits
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    recorder = Recorder(model, ["1"], x[:100], labels=y[:100], out=tmp_path / "run", class_names=CLASSES, draw=False)
    recorder.start()
    recorder.epoch_end(1, metrics={"loss": float("nan"), "acc": torch.tensor(0.5)})
    recorder.epoch_end(2, metrics={"loss": float("inf"), "acc": 0.6})
    run = load_run(tmp_path / "run")
    assert run.history == [{"snapshot": 1, "epoch": 1, "loss": None, "acc": 0.5},
                           {"snapshot": 2, "epoch": 2, "loss": None, "acc": 0.6}]
    assert run.manifest["notes"] == ["snapshot 1: loss was nan (stored as null)",
                                     "snapshot 2: loss was inf (stored as null)"]
    recorder.finish(draw=True)  # the curves and report draw around the gap
    assert (tmp_path / "run" / "figures" / "curves.png").is_file()


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"labels": np.zeros(7, dtype=int)}, ConfigError,
     r"^the probe labels hold 7 entries but the probe 50 inputs: give one label per input$"),
    ({"labels": np.arange(50) % 10, "class_names": ["a", "b"]}, ConfigError,
     r"^labels hold class 9 but class_names names 2 classes: give a name for every class \(class_names=\[\.\.\.\] "
     r"with at least 10 names\)$"),
    ({"labels": np.arange(50) % 10}, ConfigError,
     r"^a run of your own data needs its class names: pass class_names=\[\.\.\.\]"),
    ({"class_names": CLASSES}, ConfigError, r"^a Recorder that writes a run folder needs the probe's labels"),
    ({"labels": np.eye(10)[np.arange(50) % 10].astype(int), "class_names": CLASSES}, ConfigError,
     r"^labels must be one whole-number class index per input, got int\w+ of shape \(50, 10\)"),
    ({"labels": np.arange(50) % 10, "class_names": CLASSES, "test_set": torch.zeros(5, 64)}, ConfigError,
     r"^the test set needs labels: pass test_set_labels=\.\.\. \(or test_labels\)"),
    ({"labels": np.arange(50) % 10, "class_names": CLASSES, "every": 0}, ConfigError,
     r"^every must be 'epoch', 'log' or a whole number of optimizer steps of at least 1, got 0$"),
    ({"labels": np.arange(50) % 10, "class_names": CLASSES, "reduce": "avg"}, ConfigError,
     r"^reduce for layer '0' must be one of flatten, mean, first, last, tokens, got 'avg'$"),
])
def test_bad_recording_input_is_one_line(tmp_path: Path, kwargs: dict, error: type, message: str) -> None:
    model = nn.Sequential(nn.Linear(64, 10))
    with pytest.raises(error, match=message) as caught:
        Recorder(model, ["0"], torch.zeros(50, 64), out=tmp_path / "run", **kwargs)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "run").exists()  # nothing written


def test_a_probe_that_does_not_fit_says_the_shape_and_what_the_layer_that_failed_takes() -> None:
    model = nn.Sequential(nn.Linear(100, 10))
    with pytest.raises(ConfigError, match=r"^the probe does not fit the model: a batch of shape \(30, 784\) float32 "
                                          r"failed in layer '0' \(Linear, takes 100 features per input\); "
                                          r"torch said: mat1 and mat2 shapes cannot be multiplied"):
        with Recorder(model, ["0"], torch.zeros(30, 784)) as recorder:
            recorder.snapshot(0)


def test_a_shuffling_probe_loader_is_refused(digits) -> None:
    x, y = digits
    with pytest.raises(ConfigError, match=r"^the probe DataLoader shuffles: .* pass a DataLoader with shuffle=False"):
        Recorder(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), ["1"],
                 DataLoader(TensorDataset(x[:50], y[:50]), shuffle=True))


def test_an_unknown_module_lists_close_matches_from_that_model() -> None:
    model = ResNetish()
    with pytest.raises(LayerNotFoundError, match=r"^unknown layer 'blocks.2' \(did you mean .*'blocks.1'.*\): the "
                                                 r"model has \d+ layers; model\.named_modules\(\) lists them$"):
        Recorder(model, ["blocks.2"], torch.zeros(4, 1, 8, 8))


class DictDataset(Dataset):
    """Items as Hugging Face datasets give them: a dict with the inputs and "labels"."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"images": self.x[index], "labels": self.y[index]}


def test_a_dataset_of_dicts_gives_labels_and_keyword_inputs(digits) -> None:
    x, y = digits

    class Keyworded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.fc(images.flatten(1))

    with Recorder(Keyworded(), ["fc"], DictDataset(x[:60], y[:60]), batch_size=25) as recorder:
        assert recorder.snapshot(0).activations["fc"].shape == (60, 10)
        np.testing.assert_array_equal(recorder.labels, y[:60].numpy())


def test_the_caption_states_the_reduction(digits, tmp_path: Path) -> None:
    from layerlapse.render.captions import frame_caption

    x, y = digits
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(256, 10))
    recorder = Recorder(model, ["0"], x[:100], labels=y[:100], out=tmp_path / "run", class_names=CLASSES,
                        reduce="mean", draw=False)
    recorder.start()
    run = recorder.finish()
    assert re.match(r"layer 0 \(mean over space\) · 100 probe images", frame_caption(run, "0", 0, 100))


def test_an_own_loop_resumes_its_run_folder_without_rewriting_finished_snapshots(digits, tmp_path: Path) -> None:
    import hashlib

    x, y = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    first = Recorder(model, ["1"], x[:100], labels=y[:100], out=tmp_path / "run", class_names=CLASSES, draw=False)
    first.start()
    first.epoch_end(1, metrics={"loss": 1.0})
    first.epoch_end(2, metrics={"loss": 0.5})
    first.recording_session().abort(interrupted=True)  # as Ctrl-C would leave it
    first.close()
    recorded = {path: hashlib.sha256(path.read_bytes()).hexdigest()
                for path in (tmp_path / "run" / "activations").rglob("*.npy")}
    again = Recorder(model, ["1"], x[:100], labels=y[:100], out=tmp_path / "run", class_names=CLASSES, resume=True,
                     draw=False)
    assert again.start().epochs_complete == 2  # reopened; no new snapshot of the untrained network
    for epoch in (1, 2, 3):  # a loop that replays finished epochs: those are skipped
        again.epoch_end(epoch, metrics={"loss": 1.0 / epoch})
    run = again.finish()
    assert run.status == "complete" and run.epochs_complete == 3
    assert [row["loss"] for row in run.history] == [1.0, 0.5, 1.0 / 3]
    assert {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in recorded} == recorded


def test_the_session_ends_a_run_one_way_aborted_once_or_complete(digits, tmp_path: Path) -> None:
    """abort: marked interrupted on top of the last commit, the mapping worker stopped and the lock given back; a
    second abort changes nothing. complete(draw=False): complete as recorded, the lock given back."""
    x, y = digits
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    rec = Recorder(model, ["1"], x[:100], y[:100], tmp_path / "run", class_names=CLASSES)  # draw: a mapping worker
    session = rec.recording_session()
    rec.start()
    assert session.on_snapshot.worker is not None and session.on_snapshot.worker._process.is_alive()
    session.abort(interrupted=True)
    assert not session.on_snapshot.worker._process.is_alive()
    before = (tmp_path / "run" / "manifest.json").read_bytes()
    session.abort()  # not "failed" on top: the first end is the one that says what happened
    assert (tmp_path / "run" / "manifest.json").read_bytes() == before and load_run(tmp_path / "run").status == (
        "interrupted")
    RunFolder.open_for_writing(tmp_path / "run").close()  # the lock was given back
    rec.close()
    again = Recorder(model, ["1"], x[:100], y[:100], tmp_path / "run", class_names=CLASSES, resume=True, draw=False)
    again.start()
    again.epoch_end(1)
    run = again.recording_session().complete(draw=False)
    assert run.status == "complete" and run.epochs_complete == 1
    RunFolder.open_for_writing(tmp_path / "run").close()


def test_one_snapshot_and_a_run_without_predictions_draw_what_they_can(digits, tmp_path: Path) -> None:
    """A run of one snapshot has no dynamics and a run whose model gives no class scores has no predictions: each
    says so, and the layer measures and every other picture are still drawn."""
    from layerlapse.measures.dynamics import summary
    from layerlapse.errors import RunFolderError

    torch.manual_seed(0)
    x, y = digits
    train = TensorDataset(x[:300], y[:300])
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    once = Recorder(model, ["2"], DataLoader(train, batch_size=100), out=tmp_path / "once", class_names=CLASSES)
    once.start()
    run = once.finish()
    assert run.status == "complete" and run.epochs_complete == 0
    assert not (run.path / "dynamics" / "probe.npz").exists() and not (run.path / "figures/data_map.png").exists()
    measured = json.loads((run.path / "dynamics" / "layers.json").read_text())
    assert measured["snapshots"] == [0] and measured["layers"]["2"]["cka"] == [[1.0]]
    for relpath in ("figures/cka.png", "figures/layer_measures.png", "lapse.gif", "report.html"):
        assert (run.path / relpath).is_file(), relpath
    with pytest.raises(RunFolderError, match="fewer than two trained snapshots with stored predictions"):
        summary(run)

    # scores shaped (inputs, 2, 5), not (inputs, classes): only activations are recorded
    shaped = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.Unflatten(1, (2, 5)))
    optimizer = torch.optim.Adam(shaped.parameters(), lr=3e-3)
    plain = Recorder(shaped, ["2"], DataLoader(train, batch_size=100), out=tmp_path / "plain", class_names=CLASSES)
    plain.start()
    for epoch in (1, 2):
        for xb, yb in DataLoader(train, batch_size=50, shuffle=True):
            optimizer.zero_grad()
            nn.functional.cross_entropy(shaped(xb).flatten(1), yb).backward()
            optimizer.step()
        plain.epoch_end(epoch)
    run = plain.finish()
    assert run.status == "complete" and not any(key.startswith("predictions/") for key in run.manifest["files"])
    assert "dynamics/probe.npz" not in run.manifest["files"]
    measured = json.loads((run.path / "dynamics" / "layers.json").read_text())["layers"]["2"]
    assert len(measured["knn_accuracy"]) == 3 and all(0 <= value <= 1 for value in measured["knn_accuracy"])
    page = (run.path / "report.html").read_text()
    assert "layerlapse-data-map" not in page and "layerlapse-cka" in page


def test_a_snapshots_map_is_stored_while_the_next_epoch_trains(digits, tmp_path: Path) -> None:
    """The mapping worker's frame goes into the run folder as soon as it is sent (a storer thread, the run's write
    lock), not only when the next snapshot records: a long epoch does not hold the last map back from a watcher."""
    import time

    x, y = digits
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    recorder = Recorder(model, layers=["2"], probe=x[:120], labels=y[:120], out=tmp_path / "run",
                        class_names=CLASSES, config=RunConfig(map_method="pca"))
    recorder.start()  # snapshot 0; no epoch_end follows while the test waits
    listed = False
    deadline = time.monotonic() + 120
    while not listed and time.monotonic() < deadline:
        time.sleep(0.1)
        listed = "maps/2/epoch_000.npy" in RunFolder.open(tmp_path / "run", verify=False).manifest["files"]
    assert listed, "snapshot 0's map was not stored while the run waited"
    recorder.epoch_end(1)
    run = recorder.finish()
    assert run.status == "complete" and run.has("maps/2/epoch_001.npy")
