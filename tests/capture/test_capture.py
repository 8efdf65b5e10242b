import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from layerlapse.capture import Recorder, Snapshot, find_layers, layer_table, stratified_probe
from layerlapse.config import RunConfig
from layerlapse.errors import ConfigError, LayerlapseError, LayerNotFoundError, RecordingWarning
from layerlapse.reference.models import ReferenceCNN, SameConv2d
from layerlapse.store.run import RunFolder

N_PROBE = 40


@pytest.fixture
def model() -> ReferenceCNN:
    torch.manual_seed(0)
    return ReferenceCNN((8, 8))


@pytest.fixture
def probe() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (N_PROBE, 8, 8), dtype=torch.uint8, generator=generator)


def by_hand(model: ReferenceCNN, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The eval-mode forward pass written out layer by layer: the oracle for what the hooks record."""
    outputs = {}
    with torch.no_grad():
        x = images.float().div(255.0).unsqueeze(1)
        outputs["conv2D_1"] = x = F.conv2d(F.pad(x, (0, 1, 0, 1)), model.conv2D_1.weight, model.conv2D_1.bias)
        outputs["conv2D_2"] = x = F.conv2d(F.pad(x, (0, 1, 0, 1)), model.conv2D_2.weight, model.conv2D_2.bias)
        x = F.max_pool2d(F.relu(x), 2)  # dropout is off in eval mode
        x = F.conv2d(F.pad(x, (0, 1, 0, 1)), model.conv2D_3.weight, model.conv2D_3.bias)
        x = F.conv2d(F.pad(x, (0, 1, 0, 1)), model.conv2D_4.weight, model.conv2D_4.bias)
        outputs["pool2"] = x = F.max_pool2d(F.relu(x), 2)
        outputs["hidden"] = x = x.flatten(1) @ model.hidden.weight.T + model.hidden.bias
        outputs["end"] = F.relu(x) @ model.end.weight.T + model.end.bias
    return outputs


def hooks_left(model: nn.Module) -> int:
    return sum(len(module._forward_hooks) for module in model.modules())


def make_run(tmp_path) -> RunFolder:
    config = RunConfig(dataset="digits", layers=("hidden",), probe=None, n_neighbors=15)
    return RunFolder.create(tmp_path / "run", config, {"name": "digits"})


# ---- what a snapshot holds -------------------------------------------------------------------------------------------
def test_snapshot_shapes_and_types(model: ReferenceCNN, probe: torch.Tensor) -> None:
    with Recorder(model, ["hidden"], probe) as recorder:
        snapshot = recorder.snapshot(0)
    assert isinstance(snapshot, Snapshot) and snapshot.epoch == 0
    assert list(snapshot.activations) == ["hidden"]
    assert snapshot.activations["hidden"].shape == (N_PROBE, 512)
    assert snapshot.activations["hidden"].dtype == np.float16
    assert snapshot.probabilities.shape == (N_PROBE, 10) and snapshot.probabilities.dtype == np.float32
    np.testing.assert_allclose(snapshot.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert snapshot.shapes == {"hidden": (512,)}
    assert repr(snapshot) == f"Snapshot(epoch=0, probe={N_PROBE}, layers={{hidden: 512}})"


def test_hidden_is_the_linear_output_before_its_relu(model: ReferenceCNN, probe: torch.Tensor) -> None:
    with Recorder(model, ["hidden"], probe) as recorder:
        snapshot = recorder.snapshot(1)
    expected = by_hand(model, probe)
    recorded = snapshot.activations["hidden"]
    assert (recorded < 0).any()  # before the ReLU
    np.testing.assert_allclose(recorded.astype(np.float32), expected["hidden"].numpy(), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(snapshot.probabilities, torch.softmax(expected["end"], 1).numpy(), rtol=1e-4,
                               atol=1e-6)


def test_several_layers_including_convolutions_are_flattened_per_sample(model: ReferenceCNN,
                                                                      probe: torch.Tensor) -> None:
    with Recorder(model, ["conv2D_2", "hidden", "pool2"], probe) as recorder:
        snapshot = recorder.snapshot(0)
    assert list(snapshot.activations) == ["conv2D_2", "hidden", "pool2"]
    assert snapshot.activations["conv2D_2"].shape == (N_PROBE, 32 * 8 * 8)
    assert snapshot.activations["pool2"].shape == (N_PROBE, 32 * 2 * 2)
    assert snapshot.shapes == {"conv2D_2": (32, 8, 8), "hidden": (512,), "pool2": (32, 2, 2)}
    expected = by_hand(model, probe)
    for name in ("conv2D_2", "pool2"):  # flattened in (channel, row, column) order
        np.testing.assert_allclose(snapshot.activations[name].astype(np.float32),
                                   expected[name].flatten(1).numpy(), rtol=2e-3, atol=2e-3)


def test_uint8_images_and_float_images_give_the_same_snapshot(model: ReferenceCNN, probe: torch.Tensor) -> None:
    as_float = probe.float().div(255.0).unsqueeze(1)
    with Recorder(model, ["hidden"], probe.numpy()) as from_numpy, Recorder(model, ["hidden"], as_float) as from_float:
        first, second = from_numpy.snapshot(0), from_float.snapshot(0)
    np.testing.assert_array_equal(first.activations["hidden"], second.activations["hidden"])
    np.testing.assert_array_equal(first.probabilities, second.probabilities)


def test_a_small_batch_size_gives_the_same_snapshot_in_more_passes(model: ReferenceCNN, probe: torch.Tensor) -> None:
    passes = []
    counter = model.register_forward_pre_hook(lambda module, inputs: passes.append(len(inputs[0])))
    try:
        with Recorder(model, ["conv2D_1", "hidden"], probe) as whole:
            one_batch = whole.snapshot(0)
        assert passes == [N_PROBE]
        passes.clear()
        with Recorder(model, ["conv2D_1", "hidden"], probe, batch_size=7) as batched:
            in_batches = batched.snapshot(0)
        assert passes == [7, 7, 7, 7, 7, 5]
    finally:
        counter.remove()
    for name in ("conv2D_1", "hidden"):
        np.testing.assert_allclose(in_batches.activations[name].astype(np.float32),
                                   one_batch.activations[name].astype(np.float32), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(in_batches.probabilities, one_batch.probabilities, rtol=1e-5, atol=1e-7)


def test_channels_last_and_an_explicit_device_change_nothing(model: ReferenceCNN, probe: torch.Tensor) -> None:
    with Recorder(model, ["hidden"], probe) as plain, \
            Recorder(model, ["hidden"], probe, device="cpu", channels_last=True) as tuned:
        first, second = plain.snapshot(0), tuned.snapshot(0)
    assert tuned.device == torch.device("cpu")
    np.testing.assert_allclose(second.activations["hidden"].astype(np.float32),
                               first.activations["hidden"].astype(np.float32), rtol=1e-3, atol=1e-3)


def test_run_probe_records_other_inputs_without_storing_them(model: ReferenceCNN, probe: torch.Tensor,
                                                             tmp_path) -> None:
    run = make_run(tmp_path)
    with Recorder(model, ["hidden"], probe, run=run) as recorder:
        activations, probabilities, shapes = recorder.run_probe(probe[:9])
    assert activations["hidden"].shape == (9, 512) and probabilities.shape == (9, 10)
    assert shapes == {"hidden": (512,)} and run.manifest["files"] == {}


def test_the_default_batches_are_250_images() -> None:
    assert Recorder.__init__.__kwdefaults__["batch_size"] == 250  # see the Recorder's docstring for why


def test_an_empty_probe_is_refused(model: ReferenceCNN, probe: torch.Tensor) -> None:
    with Recorder(model, ["hidden"], probe) as recorder, pytest.raises(ValueError, match="the probe is empty"):
        recorder.run_probe(probe[:0])


def test_snapshots_equal_the_model_s_own_forward_pass_bit_for_bit(model: ReferenceCNN, probe: torch.Tensor) -> None:
    model = model.to(memory_format=torch.channels_last)
    seen = {}
    handles = [getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
               for name in ("conv2D_1", "conv2D_4", "hidden")]
    try:
        with torch.no_grad():
            logits = model.eval()(probe.float().div(255.0).unsqueeze(1))
    finally:
        for handle in handles:
            handle.remove()
    with Recorder(model, ["conv2D_1", "conv2D_4", "hidden"], probe, batch_size=N_PROBE) as recorder:
        snapshot = recorder.snapshot(0)
    for name, output in seen.items():
        np.testing.assert_array_equal(snapshot.activations[name], output.flatten(1).half().numpy())
    np.testing.assert_array_equal(snapshot.probabilities, torch.softmax(logits, 1).numpy())


def test_a_subclass_of_same_conv2d_keeps_its_own_forward(probe: torch.Tensor) -> None:
    class Doubled(SameConv2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    torch.manual_seed(0)
    model = nn.Sequential(Doubled(1, 2), nn.Flatten(), nn.Linear(2 * 64, 3))
    with Recorder(model, ["0"], probe) as recorder:
        activations, _, _ = recorder.run_probe(probe)
    with torch.no_grad():
        expected = model[0](probe.float().div(255.0).unsqueeze(1))
    np.testing.assert_array_equal(activations["0"], expected.flatten(1).half().numpy())
    assert "forward" not in vars(model[0])


# ---- modes and hooks -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
def test_snapshot_restores_the_mode_the_model_was_in(model: ReferenceCNN, probe: torch.Tensor, training: bool) -> None:
    model.train(training)
    with Recorder(model, ["hidden"], probe) as recorder:
        recorder.snapshot(0)
    assert model.training is training
    assert all(module.training is training for module in model.modules())


def test_snapshot_restores_a_mixed_mode(model: ReferenceCNN, probe: torch.Tensor) -> None:
    model.train()
    model.drop1.eval()
    with Recorder(model, ["hidden"], probe) as recorder:
        recorder.snapshot(0)
    assert model.training and model.drop2.training
    assert not model.drop1.training


def test_snapshot_runs_in_eval_mode_so_dropout_is_off(model: ReferenceCNN, probe: torch.Tensor) -> None:
    model.train()
    with Recorder(model, ["hidden"], probe) as recorder:
        first, second = recorder.snapshot(0), recorder.snapshot(0)
    np.testing.assert_array_equal(first.activations["hidden"], second.activations["hidden"])
    np.testing.assert_array_equal(first.probabilities, second.probabilities)
    with torch.no_grad():  # and dropout in training mode would have changed them
        train_mode = model(probe.float().div(255.0).unsqueeze(1))
    assert not np.allclose(torch.softmax(train_mode, 1).numpy(), first.probabilities, rtol=1e-3, atol=1e-4)


def test_hooks_are_removed_on_close_and_on_leaving_the_with_block(model: ReferenceCNN, probe: torch.Tensor) -> None:
    recorder = Recorder(model, ["conv2D_1", "hidden"], probe)
    assert hooks_left(model) == 2 and len(model.hidden._forward_hooks) == 1
    assert repr(recorder) == f"Recorder(layers=['conv2D_1', 'hidden'], probe={N_PROBE}, open=True)"
    recorder.close()
    assert hooks_left(model) == 0 and "open=False" in repr(recorder)
    recorder.close()  # closing twice is harmless
    with Recorder(model, ["hidden", "pool1"], probe) as recorder:
        assert hooks_left(model) == 2
    assert hooks_left(model) == 0
    with pytest.raises(RuntimeError, match="^this Recorder is closed: create a new one"):
        recorder.snapshot(1)


def test_hooks_are_removed_when_the_with_block_fails(model: ReferenceCNN, probe: torch.Tensor) -> None:
    with pytest.raises(ZeroDivisionError), Recorder(model, ["hidden"], probe):
        1 / 0
    assert hooks_left(model) == 0


def test_hooks_do_not_keep_the_model_s_outputs_between_snapshots(model: ReferenceCNN, probe: torch.Tensor) -> None:
    with Recorder(model, ["hidden"], probe) as recorder:
        recorder.snapshot(0)
        assert recorder._batch_outputs == {}  # no graph or batch kept alive on the device


def test_a_layer_named_twice_is_recorded_once(model: ReferenceCNN, probe: torch.Tensor) -> None:
    with Recorder(model, ["hidden", "hidden"], probe) as recorder:
        snapshot = recorder.snapshot(0)
    assert snapshot.activations["hidden"].shape == (N_PROBE, 512)


# ---- naming layers ---------------------------------------------------------------------------------------------------
def test_an_unknown_layer_names_the_close_match_the_count_and_how_to_list(model: ReferenceCNN,
                                                                          probe: torch.Tensor) -> None:
    with pytest.raises(LayerNotFoundError, match=r"^unknown layer 'hiden' \(did you mean 'hidden'\?\): the model has "
                                                 r"14 layers; model\.named_modules\(\) lists them$") as caught:
        Recorder(model, ["hidden", "hiden"], probe)
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, LayerlapseError)
    assert hooks_left(model) == 0  # nothing was hooked before the check


def test_an_unknown_layer_without_a_close_match(model: ReferenceCNN) -> None:
    with pytest.raises(LayerNotFoundError, match=r"^unknown layer 'xyzzy': the model has 14 layers; ") as caught:
        find_layers(model, ["xyzzy"])
    assert "did you mean" not in str(caught.value)


def bert_like() -> nn.Module:
    """A module tree named as a 12-layer BERT names its modules: 250 names, some 45 characters long."""
    def block() -> nn.Module:
        attention = nn.ModuleDict({"self": nn.ModuleDict({key: nn.Linear(2, 2) for key in ("query", "key", "value")}),
                                   "output": nn.ModuleDict({"dense": nn.Linear(2, 2), "LayerNorm": nn.LayerNorm(2)})})
        return nn.ModuleDict({"attention": attention, "intermediate": nn.ModuleDict({"dense": nn.Linear(2, 2)}),
                              "output": nn.ModuleDict({"dense": nn.Linear(2, 2), "LayerNorm": nn.LayerNorm(2)})})
    encoder = nn.ModuleDict({"layer": nn.ModuleList([block() for _ in range(12)])})
    return nn.ModuleDict({"bert": nn.ModuleDict({"encoder": encoder, "pooler": nn.Linear(2, 2)})})


@pytest.mark.parametrize(("asked", "closest"), [
    ("bert.encoder.layers.11.output", "bert.encoder.layer.11.output"),
    ("bert.encoder.layer.11.attention.output.LayerNrom", "bert.encoder.layer.11.attention.output.LayerNorm"),
    ("encoder.layer.11" + "x" * 10_000, None),
])
def test_an_unknown_layer_of_a_large_model_is_one_short_line(asked: str, closest: str | None) -> None:
    model = bert_like()
    with pytest.raises(LayerNotFoundError) as caught:
        find_layers(model, [asked])
    message = str(caught.value)
    count = len(list(model.named_modules())) - 1
    assert len(message) < 200 and "\n" not in message, (len(message), message)
    assert f"the model has {count:,} layers; model.named_modules() lists them" in message
    if closest is not None:
        assert message.startswith(f"unknown layer {asked!r} (did you mean {closest!r}"), message


def test_find_layers_names_how_its_caller_lists_layers(model: ReferenceCNN) -> None:
    with pytest.raises(LayerNotFoundError, match=r"; `layerlapse layers` lists them$"):
        find_layers(model, ["hiden"], "`layerlapse layers`")


def test_find_layers_reaches_nested_modules() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(4, 3), nn.ReLU()))
    found = find_layers(model, ["1.0", "0"])
    assert list(found) == ["1.0", "0"] and found["1.0"] is model[1][0]


# ---- writing into a run folder ---------------------------------------------------------------------------------------
def test_snapshot_writes_its_arrays_into_the_run_folder(model: ReferenceCNN, probe: torch.Tensor, tmp_path) -> None:
    run = make_run(tmp_path)
    labels = np.arange(len(probe)) % 10
    with Recorder(model, ["hidden", "conv2D_1"], probe, labels=labels, run=run) as recorder:
        snapshot = recorder.snapshot(3, {"loss": 0.5})
    # the first snapshot is number 0 whatever its epoch; the manifest says it shows epoch 3, not the untrained net
    assert sorted(run.manifest["files"]) == ["activations/conv2D_1/epoch_000.npy", "activations/hidden/epoch_000.npy",
                                             "history.jsonl", "predictions/epoch_000.npy", "probe/images.npy",
                                             "probe/labels.npy"]
    opened = RunFolder.open(run.path)  # the snapshot committed its epoch
    assert opened.epochs_complete == 0 and opened.history == [{"snapshot": 0, "epoch": 3, "loss": 0.5}]
    assert opened.manifest["snapshots"] == [{"epoch": 3}] and opened.snapshot_title(0) == "Epoch 3"
    np.testing.assert_array_equal(opened.read_array("probe/labels.npy"), labels)
    assert opened.read_array("probe/images.npy").dtype == np.uint8
    np.testing.assert_array_equal(opened.activations("hidden", 0), snapshot.activations["hidden"])
    np.testing.assert_array_equal(opened.activations("conv2D_1", 0), snapshot.activations["conv2D_1"])
    assert opened.activations("hidden", 0).dtype == np.float16
    np.testing.assert_array_equal(opened.predictions(0), snapshot.probabilities)


def test_take_writes_nothing_and_store_writes_what_snapshot_writes(model: ReferenceCNN, probe: torch.Tensor,
                                                                    tmp_path) -> None:
    labels = np.arange(len(probe)) % 10
    run = make_run(tmp_path / "a")
    with Recorder(model, ["hidden"], probe, labels=labels, run=run) as recorder:
        taken = recorder.take(2)
        assert run.manifest["files"] == {} and run.epochs_complete < 0
        recorder.store(taken, {"val_acc": 0.5})
    other = make_run(tmp_path / "b")
    with Recorder(model, ["hidden"], probe, labels=labels, run=other) as recorder:
        snapshot = recorder.snapshot(2, {"val_acc": 0.5})
    assert run.manifest["files"] == other.manifest["files"]
    assert RunFolder.open(run.path).history == [{"snapshot": 0, "epoch": 2, "val_acc": 0.5}]
    np.testing.assert_array_equal(taken.activations["hidden"], snapshot.activations["hidden"])


def test_store_without_a_run_folder_says_how_to_give_one(model: ReferenceCNN, probe: torch.Tensor) -> None:
    with Recorder(model, ["hidden"], probe) as recorder:
        taken = recorder.take(0)
        with pytest.raises(ValueError, match=r"^this Recorder writes no run folder: create it with "
                                             r"out=\"runs/NAME\""):
            recorder.store(taken)


def test_a_recorder_writing_to_a_run_folder_needs_labels(model: ReferenceCNN, probe: torch.Tensor, tmp_path) -> None:
    run = make_run(tmp_path)
    with Recorder(model, ["hidden"], probe, run=run) as recorder, \
            pytest.raises(ValueError, match=r"needs the probe's labels: pass labels="):
        recorder.snapshot(0)
    with pytest.raises(ValueError, match=r"the probe labels hold 3 entries but the probe \d+ inputs: give one label per input"):
        Recorder(model, ["hidden"], probe, labels=[0, 1, 2])


# ---- the probe set ---------------------------------------------------------------------------------------------------
def imbalanced_labels() -> np.ndarray:
    counts = [30, 45, 60, 75, 90, 25, 40, 55, 70, 110]  # 600 labels
    return np.random.default_rng(5).permutation(np.repeat(np.arange(10), counts))


def test_stratified_probe_keeps_the_class_proportions() -> None:
    labels = imbalanced_labels()
    chosen = stratified_probe(labels, 120, seed=0)
    assert len(chosen) == 120 and len(np.unique(chosen)) == 120
    assert np.all(np.diff(chosen) > 0) and chosen.min() >= 0 and chosen.max() < len(labels)
    exact = np.bincount(labels) * 120 / len(labels)
    assert np.all(np.abs(np.bincount(labels[chosen], minlength=10) - exact) <= 1)


def test_stratified_probe_is_seeded() -> None:
    labels = imbalanced_labels()
    np.testing.assert_array_equal(stratified_probe(labels, 120, seed=3), stratified_probe(labels, 120, seed=3))
    assert not np.array_equal(stratified_probe(labels, 120, seed=3), stratified_probe(labels, 120, seed=4))


@pytest.mark.parametrize("size", [None, 600, 1000])
def test_stratified_probe_of_all_or_more_takes_every_index(size: int | None) -> None:
    np.testing.assert_array_equal(stratified_probe(imbalanced_labels(), size, seed=0), np.arange(600))


# ---- the layer table -------------------------------------------------------------------------------------------------
def test_layer_table_lists_every_layer_with_its_output_shape(model: ReferenceCNN) -> None:
    model.train()
    table = layer_table(model, (1, 8, 8))
    assert [row[0] for row in table] == [name for name, _ in model.named_children()]
    rows = {name: (kind, shape) for name, kind, shape in table}
    assert rows["conv2D_1"] == ("SameConv2d", (32, 8, 8))
    assert rows["pool1"] == ("MaxPool2d", (32, 4, 4))
    assert rows["drop2"] == ("FastDropout", (32, 2, 2))
    assert rows["flat1"] == ("Flatten", (128,))
    assert rows["hidden"] == ("Linear", (512,))
    assert rows["end"] == ("Linear", (10,))
    assert model.training and hooks_left(model) == 0
    big = {name: shape for name, _, shape in layer_table(ReferenceCNN((28, 28)), (1, 28, 28))}
    assert big["pool2"] == (32, 7, 7) and big["flat1"] == (1568,)


# ---- sequences: the last step, by attention mask or lengths, and layouts -------------------------------------------
class Reader(nn.Module):
    """An LSTM over 6 steps of 5 features, its last step classified: batch first, or (steps, batch) when not."""

    def __init__(self, batch_first: bool = True, bidirectional: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.LSTM(5, 4, num_layers=2, batch_first=batch_first, bidirectional=bidirectional)
        self.head = nn.Linear(8 if bidirectional else 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence, _ = self.rnn(x if self.rnn.batch_first else x.transpose(0, 1))
        return self.head(sequence[:, -1] if self.rnn.batch_first else sequence[-1])


def final_states(model: Reader, x: torch.Tensor) -> torch.Tensor:
    """The oracle: the top layer's final hidden state h_n, of each direction."""
    with torch.no_grad():
        _, (h_n, _) = model.rnn(x if model.rnn.batch_first else x.transpose(0, 1))
    return torch.cat(list(h_n[-2:]), dim=1) if model.rnn.bidirectional else h_n[-1]


def sequences(n: int = 14) -> torch.Tensor:
    return torch.randn(n, 6, 5, generator=torch.Generator().manual_seed(2))


def test_reduce_last_takes_a_recurrent_layer_s_last_step() -> None:
    model, x = Reader(), sequences()
    with Recorder(model, ["rnn"], x, reduce="last") as recorder:
        snapshot = recorder.snapshot(0)
        caption = recorder.layer_info()["rnn"]["caption"]
    np.testing.assert_allclose(snapshot.activations["rnn"], final_states(model, x).numpy(), atol=1e-3)
    assert caption == "last step"


def test_a_batch_first_false_layer_is_taken_batch_first_even_when_its_steps_equal_the_batch() -> None:
    """(steps, batch, features): with 6 steps and batches of 6, it was taken as 6 inputs of their own, silently."""
    model, x = Reader(batch_first=False), sequences(12)
    with Recorder(model, ["rnn"], x, batch_size=6) as flat:
        flattened = flat.snapshot(0).activations["rnn"]
    with torch.no_grad():
        batch_first = model.rnn(x.transpose(0, 1))[0].transpose(0, 1)  # (12, 6, 4)
    np.testing.assert_allclose(flattened, batch_first.reshape(12, -1).numpy(), atol=1e-3)
    with Recorder(model, ["rnn"], x, reduce="last", batch_size=6) as last:
        np.testing.assert_allclose(last.snapshot(0).activations["rnn"], final_states(model, x).numpy(), atol=1e-3)


def test_reduce_last_of_a_bidirectional_layer_is_each_direction_s_final_state() -> None:
    model, x = Reader(bidirectional=True), sequences()
    with Recorder(model, ["rnn"], x, reduce="last") as recorder:
        snapshot = recorder.snapshot(0)
        caption = recorder.layer_info()["rnn"]["caption"]
    np.testing.assert_allclose(snapshot.activations["rnn"], final_states(model, x).numpy(), atol=1e-3)
    assert caption == "last step forward, first backward"


class Packed(nn.Module):
    """An LSTM over sequences of their own lengths: padded tokens and lengths in, a PackedSequence through it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(30, 5)
        self.rnn = nn.LSTM(5, 4, batch_first=True)
        self.head = nn.Linear(4, 3)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, (h_n, _) = self.rnn(packed)
        return self.head(h_n[-1])


def padded_tokens(n: int = 14, steps: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    lengths = torch.randint(1, steps + 1, (n,), generator=generator)
    tokens = torch.randint(1, 30, (n, steps), generator=generator)
    tokens[torch.arange(steps) >= lengths[:, None]] = 0  # padding
    return tokens, lengths


def test_reduce_last_and_mean_of_packed_sequences_follow_each_input_s_length() -> None:
    model = Packed()
    tokens, lengths = padded_tokens()
    with Recorder(model, ["rnn"], (tokens, lengths), reduce="last", batch_size=5) as last, \
            Recorder(model, ["rnn"], (tokens, lengths), reduce="mean", batch_size=5) as mean:
        last_rows, mean_rows = last.snapshot(0).activations["rnn"], mean.snapshot(0).activations["rnn"]
        captions = last.layer_info()["rnn"]["caption"], mean.layer_info()["rnn"]["caption"]
    with torch.no_grad():
        _, (h_n, _) = model.rnn(nn.utils.rnn.pack_padded_sequence(model.embed(tokens), lengths, batch_first=True,
                                                                  enforce_sorted=False))
        steps = [model.rnn(model.embed(tokens[i:i + 1, :length]))[0][0] for i, length in enumerate(lengths)]
    np.testing.assert_allclose(last_rows, h_n[-1].numpy(), atol=1e-3)
    np.testing.assert_allclose(mean_rows, torch.stack([s.mean(0) for s in steps]).numpy(), atol=1e-3)
    assert captions == ("last step (by sequence lengths)", "mean over steps (by sequence lengths)")


def test_flattening_packed_sequences_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^reduce='flatten' of the packed sequences of layer 'rnn' would give each "
                                          r"batch its own width: use reduce='last', 'mean' or 'first' for it$"):
        with Recorder(Packed(), ["rnn"], padded_tokens()) as recorder:
            recorder.snapshot(0)


class Tagger(nn.Module):
    """Token ids and an attention mask in, as Hugging Face models take them: a transformer layer over the tokens."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(30, 8)
        self.encoder = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
        self.halves = Halves()
        self.head = nn.Linear(8, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        return self.head(self.halves(hidden).mean(1))


class Halves(nn.Module):
    """Every second token: a layer whose tokens are not the attention mask's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, ::2]


def masked_tokens() -> dict[str, torch.Tensor]:
    tokens, _ = padded_tokens(steps=6)
    lengths = torch.tensor([2, 3, 1, 4, 6, 5, 2, 1, 3, 4, 2, 5, 1, 3])
    mask = (torch.arange(6) < lengths[:, None]).long()
    mask[:4] = mask[:4].flip(1)  # the first four padded on the left, as some tokenizers pad
    return {"input_ids": tokens * mask, "attention_mask": mask}


def test_reduce_last_takes_each_input_s_last_real_token_by_its_attention_mask() -> None:
    model, probe = Tagger(), masked_tokens()
    with Recorder(model, ["encoder"], probe, reduce="last", batch_size=5) as recorder:
        snapshot = recorder.snapshot(0)
        caption = recorder.layer_info()["encoder"]["caption"]
    with torch.no_grad():
        hidden = model.encoder(model.embed(probe["input_ids"]), src_key_padding_mask=probe["attention_mask"] == 0)
    mask = probe["attention_mask"]
    last = [int(torch.nonzero(row)[-1]) for row in mask]  # the oracle: each row's last 1
    assert last[0] == 5 and last[-1] < 5  # padded on the left, and on the right
    np.testing.assert_allclose(snapshot.activations["encoder"], hidden[torch.arange(len(mask)), last].numpy(),
                               atol=1e-3)
    assert caption == "last token (by attention mask)"


def test_reduce_mean_and_first_leave_the_padding_out_by_the_attention_mask() -> None:
    """The mean of each input's real tokens (not its pad tokens), and its first real token under left padding; a
    layer whose tokens are not the mask's is averaged as it is."""
    model, probe = Tagger(), masked_tokens()
    with torch.no_grad():
        hidden = model.encoder(model.embed(probe["input_ids"]), src_key_padding_mask=probe["attention_mask"] == 0)
    rows = [torch.nonzero(row)[:, 0] for row in probe["attention_mask"]]  # the oracle: each row's real tokens
    for how, want in (("mean", [hidden[i, real].mean(0) for i, real in enumerate(rows)]),
                      ("first", [hidden[i, real[0]] for i, real in enumerate(rows)])):
        with Recorder(model, ["encoder", "halves"], probe, reduce=how, batch_size=5) as recorder:
            snapshot = recorder.snapshot(0)
            info = recorder.layer_info()
        np.testing.assert_allclose(snapshot.activations["encoder"], torch.stack(want).numpy(), atol=1e-3)
        halves = model.halves(hidden)
        np.testing.assert_allclose(snapshot.activations["halves"], (halves.mean(1) if how == "mean" else halves[:, 0])
                                   .numpy(), atol=1e-3)
        assert info["encoder"]["caption"] == {"mean": "mean over tokens (by attention mask)",
                                              "first": "first token"}[how]
        assert info["halves"]["caption"] == {"mean": "mean over tokens", "first": "first token"}[how]


def test_reduce_last_by_an_attention_mask_that_does_not_fit_the_layer_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^reduce='last' finds each input's last token by its attention_mask of 6 "
                                          r"tokens, but layer 'halves' outputs \(3, 8\) per input: use "
                                          r"reduce='mean' or 'first' for it$"):
        with Recorder(Tagger(), ["halves"], masked_tokens(), reduce="last") as recorder:
            recorder.snapshot(0)


def test_reduce_last_of_a_conv_map_is_refused_with_the_fix() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    with pytest.raises(ConfigError, match=r"^reduce='last' takes the last token of \(tokens, features\) outputs, but "
                                          r"layer '0' outputs \(4, 6, 6\) per input: use reduce='mean' or 'flatten'"):
        with Recorder(model, ["0"], torch.zeros(5, 1, 8, 8), reduce="last") as recorder:
            recorder.snapshot(0)


def test_reduce_first_on_a_recurrent_layer_warns_that_it_read_one_step() -> None:
    with pytest.warns(RecordingWarning, match=r"^reduce='first' records recurrent layer 'rnn' after its first step, which "
                                         r"has read the first input only: reduce='last' records it after the whole"):
        Recorder(Reader(), ["rnn"], sequences(), reduce="first").close()


def test_a_recurrent_layer_s_hidden_state_is_refused_with_the_way_to_its_last_step() -> None:
    with pytest.raises(ConfigError, match=r"^the selected output of layer 'rnn' has shape \(2, 14, 4\): a recurrent "
                                          r"layer's hidden state is \(layers, batch, features\); record its sequence "
                                          r"\(output=0\) with reduce='last' instead$"):
        with Recorder(Reader(), ["rnn"], sequences(), output=1) as recorder:
            recorder.snapshot(0)


def test_an_output_of_steps_then_batch_from_an_unknown_layout_is_refused() -> None:
    class StepsFirst(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.transpose(0, 1)

    model = nn.Sequential(StepsFirst(), nn.Flatten(1), nn.Linear(14 * 5, 2))
    with pytest.raises(ConfigError, match=r"^the output of layer '0' has shape \(6, 14, 5\), \(steps, batch, "
                                          r"features\) for a batch of 14: make the layer batch_first=True, or select"):
        with Recorder(model, ["0"], sequences()) as recorder:
            recorder.snapshot(0)


def test_an_entry_the_output_lacks_is_named_without_a_doubled_quote() -> None:
    with pytest.raises(ConfigError, match=r"^the output of layer 'rnn' has no entry 5: it holds a tuple of 2"):
        with Recorder(Reader(), ["rnn"], sequences(), output=5) as recorder:
            recorder.snapshot(0)


# ---- a probe that does not fit: where it failed ----------------------------------------------------------------------
def pre_hooks_left(model: nn.Module) -> int:
    return sum(len(module._forward_pre_hooks) for module in model.modules())


def test_a_probe_of_the_wrong_image_size_names_the_layer_that_failed(model: ReferenceCNN) -> None:
    """The convolutions take 12×12 images as well as 8×8; the first Linear does not, and is named, not conv2D_1."""
    big = torch.zeros(5, 12, 12, dtype=torch.uint8)
    with Recorder(model, ["hidden"], big) as recorder:
        before = pre_hooks_left(model)
        with pytest.raises(ConfigError, match=r"^the probe does not fit the model: a batch of shape \(5, 1, 12, 12\) "
                                              r"float32 failed in layer 'hidden' \(Linear, takes 128 features per "
                                              r"input\); torch said: mat1 and mat2 shapes cannot be multiplied"):
            recorder.snapshot(0)
        assert pre_hooks_left(model) == before  # the hooks that followed the pass are gone


def test_a_probe_that_fails_in_the_model_s_own_forward_says_after_which_layer() -> None:
    class Flattens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.fc = nn.Linear(2 * 6 * 6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.conv(x).view(-1, 2 * 6 * 6))

    with pytest.raises(ConfigError, match=r"a batch of shape \(5, 1, 10, 10\) float32 failed in Flattens\.forward "
                                          r"itself, after layer 'conv'; torch said: shape '\[-1, 72\]' is invalid"):
        with Recorder(Flattens(), ["fc"], torch.zeros(5, 1, 10, 10)) as recorder:
            recorder.snapshot(0)


# ---- labels given twice ----------------------------------------------------------------------------------------------
def test_labels_given_both_by_the_loader_and_by_labels_must_agree(tmp_path) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    x, y = torch.zeros(12, 4), torch.arange(12) % 3
    model = nn.Sequential(nn.Linear(4, 3))
    loader = DataLoader(TensorDataset(x, y), batch_size=5)
    with Recorder(model, ["0"], loader, labels=y.numpy()) as recorder:  # the same labels: taken
        np.testing.assert_array_equal(recorder.labels, y.numpy())
    with pytest.raises(ConfigError, match=r"^the probe's labels differ from the labels its items yield: give them one "
                                          r"way, either in the items or as labels=$"):
        Recorder(model, ["0"], loader, labels=(y.numpy() + 1) % 3)
    with pytest.raises(ConfigError, match=r"^the test set's labels differ .* as test_labels=$"):
        Recorder(model, ["0"], x, labels=y, out=tmp_path / "run", class_names=list("abc"), test_set=loader,
                 test_labels=np.zeros(12, dtype=int))
    assert not (tmp_path / "run").exists()


# ---- the layer table of a text model ---------------------------------------------------------------------------------
class TextNet(nn.Module):
    """As BERT is built: an embeddings module around nn.Embedding (so the first module is not an Embedding)."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = nn.ModuleDict({"words": nn.Embedding(50, 8), "norm": nn.LayerNorm(8)})
        self.rnn = nn.GRU(8, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.embeddings["norm"](self.embeddings["words"](input_ids))
        if attention_mask is not None:
            hidden = hidden * attention_mask.unsqueeze(-1)
        return self.head(self.rnn(hidden)[0][:, -1])


def test_layer_table_of_a_token_id_model_positional_or_by_keyword() -> None:
    table = {name: shape for name, _, shape in layer_table(TextNet(), (16,))}
    assert table["embeddings.words"] == (16, 8) and table["rnn"] == (16, 6) and table["head"] == (2,)
    keywords = {name: shape for name, _, shape in layer_table(TextNet(), (16,),
                                                              keywords=["input_ids", "attention_mask"])}
    assert keywords == table


def test_layer_table_tries_token_ids_when_floats_are_refused_for_their_kind() -> None:
    class Lookup(nn.Module):
        """Token ids looked up in a table of its own, without an nn.Embedding to say it takes them."""

        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(torch.randn(50, 8))
            self.head = nn.Linear(8, 2)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.table[input_ids].mean(1))

    assert {name: shape for name, _, shape in layer_table(Lookup(), (16,))} == {"head": (2,)}
    with pytest.raises(ConfigError, match=r"^the model does not take inputs of shape \(16,\) as floats: it failed in "
                                          r"Lookup\.forward itself, before any layer; torch said: tensors used as "
                                          r"indices must be"):
        layer_table(Lookup(), (16,), dtype="float")


def test_layer_table_with_floats_named_says_where_they_were_refused() -> None:
    model = TextNet()
    with pytest.raises(ConfigError, match=r"^the model does not take inputs of shape \(16,\) as floats: it failed in "
                                          r"layer 'embeddings.words' \(Embedding, takes integer token ids below 50\); "
                                          r"torch said: Expected tensor for argument #1 'indices'"):
        layer_table(model, (16,), dtype="float")
    assert hooks_left(model) == 0 and pre_hooks_left(model) == 0
    with pytest.raises(ConfigError, match=r"^the input dtype must be one of auto, float, long \(--input-dtype\), got "
                                          r"'int'$"):
        layer_table(model, (16,), dtype="int")


def test_layer_table_of_the_wrong_image_size_names_the_layer_that_failed(model: ReferenceCNN) -> None:
    with pytest.raises(ConfigError, match=r"^the model does not take inputs of shape \(1, 12, 12\) as floats: it "
                                          r"failed in layer 'hidden' \(Linear, takes 128 features per input\); "):
        layer_table(model, (1, 12, 12))
