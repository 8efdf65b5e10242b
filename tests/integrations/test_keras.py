"""The Keras 3 callback, on the torch backend: a real `model.fit` of small models on the 8×8 digits recorded into a
run folder that the command line reads, the article's network among them, and the errors a user can make.
TensorFlow and JAX run the same code; their test runs where they are installed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"  # before keras is first imported: the backend is fixed then
keras = pytest.importorskip("keras")

from sklearn.datasets import load_digits  # noqa: E402

from layerlapse.errors import ConfigError, LayerNotFoundError, RunFolderError  # noqa: E402
from layerlapse.integrations import IntegrationError  # noqa: E402
from layerlapse.integrations.keras import LayerlapseCallback, check_keras_version  # noqa: E402

# Keras' torch backend turns tensors into arrays with np.array(x), which numpy 2 warns about (a plain fit of two
# epochs, without the callback, warns 160 times): Keras' own, not the callback's
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
REPO = Path(__file__).resolve().parents[2]
LAYERLAPSE = Path(sys.executable).parent / "layerlapse"
DIGITS = [str(digit) for digit in range(10)]


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return (data.images / 16).astype("float32")[..., None], data.target  # (1797, 8, 8, 1) channels-last


def small_model(logits: bool = False) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(32, activation="relu", name="hidden"),
        keras.layers.Dense(10, activation=None if logits else "softmax", name="end"),
    ])
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=logits),
                  metrics=["accuracy"])
    return model


def fit(model: keras.Model, digits, callback: LayerlapseCallback, epochs: int = 2) -> None:
    x, y = digits
    model.fit(x[:1200], y[:1200], epochs=epochs, batch_size=32, validation_split=0.2, verbose=0,
              callbacks=[callback])


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def layerlapse(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LAYERLAPSE), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory: pytest.TempPathFactory, digits) -> Path:
    """A fit of two epochs recorded and drawn: the hidden layer, and the conv layer averaged over space."""
    x, y = digits
    out = tmp_path_factory.mktemp("keras") / "run"
    callback = LayerlapseCallback(["hidden", "conv"], probe=x[:300], labels=y[:300], out=out, class_names=DIGITS,
                                  dataset="digits", test_probe=x[1500:1600], test_probe_labels=y[1500:1600],
                                  test_set=x[1500:], test_labels=y[1500:], reduce={"conv": "mean"})
    fit(small_model(), digits, callback)
    return out


def test_a_fit_records_a_complete_run_folder(keras_run: Path) -> None:
    recorded = manifest(keras_run)
    assert recorded["status"] == "complete" and recorded["epochs_complete"] == 2
    for relpath in ("lapse.gif", "report.html", "figures/curves.png", "figures/confusion.png", "probe/images.npy",
                    *(f"frames/epoch_{epoch:03d}.png" for epoch in range(3)),
                    *(f"activations/conv/epoch_{epoch:03d}.npy" for epoch in range(3))):
        assert (keras_run / relpath).is_file(), relpath
    # Keras' accuracy and val_accuracy are the history's acc and val_acc, which the curves and captions read
    assert [sorted(row) for row in recorded["history"]] == [["acc", "epoch", "loss", "snapshot", "val_acc", "val_loss"]] * 2
    assert recorded["history"][-1]["val_acc"] > 0.5
    assert recorded["training"]["framework"].endswith("(torch)") and recorded["training"]["epochs"] == 2
    assert recorded["training"]["optimizer"] == "Adam" and recorded["config"]["learning_rate"] == 0.003
    assert recorded["test"]["size"] == 297 and recorded["test"]["accuracy"] > 0.5
    conv = recorded["layer_info"]["conv"]
    assert conv["shape"] == [8, 8, 8] and conv["columns"] == 8 and conv["caption"] == "mean over space"
    assert recorded["layer_info"]["hidden"]["caption"] == "as is"
    assert np.load(keras_run / "activations/hidden/epoch_002.npy").shape == (300, 32)
    predictions = np.load(keras_run / "predictions/epoch_002.npy")  # the softmax output as it is
    assert predictions.shape == (300, 10) and np.allclose(predictions.sum(axis=1), 1, atol=1e-5)


def test_the_command_line_reads_the_keras_run(keras_run: Path) -> None:
    rendered = layerlapse("render", keras_run)
    assert rendered.returncode == 0, rendered.stderr
    reported = layerlapse("report", keras_run)
    assert reported.returncode == 0, reported.stderr
    assert (keras_run / "report.html").stat().st_size > 10_000
    exported = layerlapse("export", "--tensorboard", keras_run, "--epoch", 1)
    assert exported.returncode == 0, exported.stderr
    assert (keras_run / "tensorboard" / "epoch_001" / "projector_config.pbtxt").is_file()


def test_the_article_network_records_its_hidden_layer(tmp_path: Path, digits, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    from keras_reference import article_model

    x, y = digits
    keras.utils.set_random_seed(0)
    model = article_model((8, 8), 10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    one_hot = keras.utils.to_categorical(y, 10)  # the article's labels, taken as they are
    callback = LayerlapseCallback(["hidden", "acti2"], probe=x[:200], labels=one_hot[:200], out=tmp_path / "run",
                                  class_names=DIGITS, reduce={"acti2": "mean"}, draw=False)
    model.fit(x[:600], one_hot[:600], batch_size=100, epochs=2, validation_split=0.2, verbose=0,
              callbacks=[callback])
    recorded = manifest(tmp_path / "run")
    assert recorded["epochs_complete"] == 2 and recorded["status"] == "complete"  # draw=False: recorded in full, drawn later
    assert np.array_equal(np.load(tmp_path / "run/probe/labels.npy"), y[:200])
    # the recorded rows are what the trained network's own layers output, channels-last maps averaged over H, W
    own = keras.Model(model.inputs, [model.get_layer("hidden").output, model.get_layer("acti2").output])
    hidden, acti2 = own.predict(x[:200], verbose=0)
    assert np.allclose(np.load(tmp_path / "run/activations/hidden/epoch_002.npy"), hidden, atol=2e-2, rtol=1e-2)
    assert np.allclose(np.load(tmp_path / "run/activations/acti2/epoch_002.npy"), acti2.mean(axis=(1, 2)),
                       atol=1e-2, rtol=1e-2)
    assert recorded["layer_info"]["hidden"]["shape"] == [512]


def test_every_n_steps_labels_the_snapshots_by_step_and_logits_are_softmaxed(tmp_path: Path, digits) -> None:
    x, y = digits
    callback = LayerlapseCallback("hidden", probe=x[:100], labels=y[:100], out=tmp_path / "run",
                                  class_names=DIGITS, every=15, draw=False)
    model = small_model(logits=True)
    fit(model, digits, callback)  # 30 steps an epoch
    recorded = manifest(tmp_path / "run")
    assert recorded["snapshots"] == [{"step": 0, "epoch": 0}, {"step": 15, "epoch": 1}, {"step": 30, "epoch": 1},
                                     {"step": 45, "epoch": 2}, {"step": 60, "epoch": 2}]
    assert recorded["schedule"] == {"every": 15}
    logits = model.predict(x[:100], verbose=0)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.allclose(np.load(tmp_path / "run/predictions/epoch_004.npy"), softmax, atol=1e-5)


# what model.fit was given, and what the manifest should state: Keras batches arrays by 32 when fit names no batch
# size, and ignores validation_split when fit is given validation_data as well
FIT_SETTINGS = {
    "batch_and_split": ({"batch_size": 128, "validation_split": 0.1}, 128, 0.1),
    "keras_default_batch": ({}, 32, None),
    "validation_data_not_split": ({"batch_size": 64, "validation_split": 0.1, "validation_data": "held out"}, 64, None),
}


@pytest.mark.parametrize("case", FIT_SETTINGS)
def test_the_manifest_states_the_batch_size_and_validation_split_of_the_fit(tmp_path: Path, digits,
                                                                          case: str) -> None:
    x, y = digits
    settings, batch_size, validation_split = FIT_SETTINGS[case]
    if "validation_data" in settings:
        settings = {**settings, "validation_data": (x[1500:1600], y[1500:1600])}
    callback = LayerlapseCallback("hidden", probe=x[:100], labels=y[:100], out=tmp_path / "run", class_names=DIGITS,
                                  draw=False)
    small_model().fit(x[:500], y[:500], epochs=1, verbose=0, callbacks=[callback], **settings)
    recorded = manifest(tmp_path / "run")
    assert recorded["config"]["batch_size"] == batch_size and recorded["training"]["batch_size"] == batch_size
    assert recorded["config"]["validation_split"] == validation_split
    assert recorded["training"].get("validation_split") == validation_split


def test_a_second_fit_needs_a_new_callback(tmp_path: Path, digits) -> None:
    x, y = digits
    callback = LayerlapseCallback("hidden", probe=x[:100], labels=y[:100], out=tmp_path / "run", class_names=DIGITS,
                                  draw=False)
    model = small_model()
    fit(model, digits, callback, epochs=1)
    with pytest.raises(RunFolderError, match=r"this LayerlapseCallback finished its run in .*run when the last fit "
                                             r"ended: give the next fit a new callback"):
        fit(model, digits, callback, epochs=1)
    assert manifest(tmp_path / "run")["epochs_complete"] == 1


def test_an_unknown_layer_lists_the_keras_layers_and_the_close_match(tmp_path: Path, digits) -> None:
    x, y = digits
    callback = LayerlapseCallback("hiden", probe=x[:100], labels=y[:100], out=tmp_path / "run", class_names=DIGITS)
    with pytest.raises(LayerNotFoundError, match=r"^unknown layer 'hiden' \(did you mean 'hidden'\?\): the Keras "
                                                 r"model has 4 layers; model\.summary\(\) lists them$") as caught:
        fit(small_model(), digits, callback, epochs=1)
    assert len(str(caught.value)) < 200
    assert not (tmp_path / "run").exists()


def test_a_subclassed_model_is_refused_with_the_functional_way(tmp_path: Path, digits) -> None:
    class Subclassed(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.flat = keras.layers.Flatten()
            self.hidden = keras.layers.Dense(10, activation="softmax", name="hidden")

        def call(self, x):
            return self.hidden(self.flat(x))

    model = Subclassed()
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = LayerlapseCallback("hidden", probe=digits[0][:100], labels=digits[1][:100], out=tmp_path / "run",
                                  class_names=DIGITS)
    with pytest.raises(ConfigError, match="the layers of Subclassed have no symbolic outputs to record .*: the "
                                          "callback records layers of a Functional or Sequential Keras model"):
        fit(model, digits, callback, epochs=1)


def test_labels_of_another_length_are_refused(tmp_path: Path, digits) -> None:
    x, y = digits
    with pytest.raises(ConfigError, match="the probe labels hold 99 entries but the probe 100 inputs: give one "
                                          "label per input"):
        LayerlapseCallback("hidden", probe=x[:100], labels=y[:99], out=tmp_path / "run", class_names=DIGITS)
    with pytest.raises(ConfigError, match="the test set needs labels: pass test_labels="):
        LayerlapseCallback("hidden", probe=x[:100], labels=y[:100], out=tmp_path / "run", class_names=DIGITS,
                           test_set=x[1500:])


def test_too_few_class_names_are_refused(tmp_path: Path, digits) -> None:
    x, y = digits
    with pytest.raises(ConfigError, match=r"labels hold class 9 but class_names names 5 classes: give a name for "
                                          r"every class \(class_names=\[...\] with at least 10 names\)"):
        LayerlapseCallback("hidden", probe=x[:100], labels=y[:100], out=tmp_path / "run", class_names=DIGITS[:5])


def test_reduce_first_is_refused_for_a_conv_layer(tmp_path: Path, digits) -> None:
    x, y = digits
    callback = LayerlapseCallback("conv", probe=x[:100], labels=y[:100], out=tmp_path / "run", class_names=DIGITS,
                                  reduce="first", draw=False)
    with pytest.raises(ConfigError, match=r"reduce='first' takes the first token of \(tokens, features\) outputs, "
                                          r"but layer 'conv' outputs \(8, 8, 8\) per input: use reduce='mean'"):
        fit(small_model(), digits, callback, epochs=1)
    assert manifest(tmp_path / "run")["status"] == "failed"  # marked, so it can be resumed or redone


def test_reduce_last_records_a_recurrent_layer_s_last_step(tmp_path: Path, digits) -> None:
    """The digits read as 8 steps of 8 pixels by an LSTM that returns its sequence."""
    x, y = digits
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8)), keras.layers.LSTM(6, return_sequences=True, name="lstm"),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = LayerlapseCallback("lstm", probe=x[:100, ..., 0], labels=y[:100], out=tmp_path / "run",
                                  class_names=DIGITS, reduce="last", draw=False)
    model.fit(x[:200, ..., 0], y[:200], epochs=1, verbose=0, callbacks=[callback])
    recorded = manifest(tmp_path / "run")
    assert recorded["layer_info"]["lstm"]["caption"] == "last step"
    sequence = keras.Model(model.inputs, model.get_layer("lstm").output).predict(x[:100, ..., 0], verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "run/activations/lstm/epoch_001.npy"), sequence[:, -1],
                               atol=1e-3)


def test_output_chooses_one_of_a_layer_s_several_outputs(tmp_path: Path, digits) -> None:
    """An LSTM with return_state=True outputs [sequence end, h, c]: output=2 records its cell state, as the
    Recorder's output= chooses a PyTorch layer's; a position the layer lacks is one line, before training."""
    x, y = digits
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8))
    _, _, cell = keras.layers.LSTM(6, return_state=True, name="lstm")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(cell))
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = LayerlapseCallback("lstm", x[:100, ..., 0], y[:100], tmp_path / "run", class_names=DIGITS, output=2,
                                  draw=False)
    model.fit(x[:200, ..., 0], y[:200], epochs=1, verbose=0, callbacks=[callback])
    assert manifest(tmp_path / "run")["layer_info"]["lstm"]["output"] == "2"
    cells = keras.Model(model.inputs, model.get_layer("lstm").output[2]).predict(x[:100, ..., 0], verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "run/activations/lstm/epoch_001.npy"), cells, atol=1e-3)
    wrong = LayerlapseCallback("lstm", x[:100, ..., 0], y[:100], tmp_path / "other", class_names=DIGITS, output=3)
    with pytest.raises(ConfigError, match=r"^output=3 is not an output of layer 'lstm': it has 3, positions 0 to 2$"):
        model.fit(x[:200, ..., 0], y[:200], epochs=1, verbose=0, callbacks=[wrong])
    assert not (tmp_path / "other").exists()


def test_reduce_last_takes_the_last_real_token_by_an_attention_mask() -> None:
    from layerlapse.integrations.keras import reduce_rows

    values = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    mask = np.array([[1, 1, 0, 0], [0, 1, 1, 1]])  # padded on the right, and on the left
    np.testing.assert_array_equal(reduce_rows(values, "last", False, "seq", mask), values[[0, 1], [1, 3]])
    np.testing.assert_array_equal(reduce_rows(values, "last", False, "seq"), values[:, -1])
    np.testing.assert_allclose(reduce_rows(values, "mean", False, "seq", mask),
                               [values[0, :2].mean(0), values[1, 1:].mean(0)])  # the real tokens only
    np.testing.assert_array_equal(reduce_rows(values, "first", False, "seq", mask), values[[0, 1], [0, 1]])
    with pytest.raises(ConfigError, match=r"^reduce='last' finds each input's last token by its attention_mask of 5 "
                                          r"tokens, but layer 'seq' outputs \(4, 3\) per input: use reduce='mean'"):
        reduce_rows(values, "last", False, "seq", np.ones((2, 5)))


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed here")
def test_a_missing_backend_is_named_not_keras() -> None:
    """Keras installed, its default backend (TensorFlow) not: the fix is the backend, not `pip install keras`."""
    result = subprocess.run([sys.executable, "-c", "import layerlapse.integrations.keras"], capture_output=True,
                            text=True, env={**os.environ, "KERAS_BACKEND": "tensorflow"}, timeout=120)
    assert result.stderr.strip().splitlines()[-1] == (
        "layerlapse.integrations.IntegrationError: Keras is installed but does not import (No module named "
        "'tensorflow'): set KERAS_BACKEND=torch (layerlapse's torch) or jax, or install the backend it names")


def test_keras_2_is_refused_with_the_upgrade() -> None:
    with pytest.raises(IntegrationError, match=r"Keras 2.15.0 is too old for layerlapse's callback, which needs "
                                               r"3.0 or later .*: pip install -U 'layerlapse\[keras\]'"):
        check_keras_version("2.15.0")
    check_keras_version("3.0.0rc1")
    check_keras_version(keras.__version__)


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_other_backends_record_the_same_way(backend: str, tmp_path: Path) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed here (the callback's code is the same on every Keras 3 backend)")
    script = textwrap.dedent(f"""
        import json, os, sys
        os.environ["KERAS_BACKEND"] = {backend!r}
        import keras, numpy as np
        from sklearn.datasets import load_digits
        from layerlapse.integrations.keras import LayerlapseCallback
        d = load_digits(); x = (d.images / 16).astype("float32")[..., None]
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(16, name="hidden"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        callback = LayerlapseCallback("hidden", probe=x[:100], labels=d.target[:100], out=sys.argv[1],
                                      class_names=[str(c) for c in range(10)], draw=False)
        model.fit(x[:400], d.target[:400], epochs=2, verbose=0, callbacks=[callback])
        print(json.load(open(os.path.join(sys.argv[1], "manifest.json")))["epochs_complete"])
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "2"
