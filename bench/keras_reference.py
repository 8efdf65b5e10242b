"""The article's recipe in Keras itself, for comparison with `bench/accuracy_spread.py`: test accuracy after the
last epoch, for each seed.

The same network (layer for layer, Keras' initialisers and "same" padding), Adam (lr 1e-3, Keras' defaults),
categorical cross-entropy on the softmax output, batch 100, `validation_split=0.2` on the training set put in the
order layerlapse's split uses for the seed (so the held-out fifth is the same images), shuffled again every epoch.
Keras and TensorFlow are not layerlapse's dependencies; give the script its own environment:

    python3 -m venv .venv-keras && .venv-keras/bin/pip install tensorflow-cpu && .venv-keras/bin/pip install --no-deps -e .
    LAYERLAPSE_DATA=../shared/data .venv-keras/bin/python bench/keras_reference.py --seeds 0,1,2

(`KERAS_BACKEND=torch` or `jax`, or `--backend torch`, run it on another backend, if installed: 2-4× slower here.)

`--record runs/keras` adds layerlapse's Keras callback to the article's own `model.fit`: the "hidden" layer of every
training image (or of a stratified `--probe N` of them) before training and after every epoch, the test set after
the last, then maps, frames, lapse.gif and report.html, a run that `layerlapse render` and `report` read. Recording
needs layerlapse with its dependencies (`pip install -e .`, not `--no-deps`):

    LAYERLAPSE_DATA=../shared/data .venv/bin/python bench/keras_reference.py --backend torch --seeds 0 --epochs 2 \
        --record runs/keras --probe 2000
"""

from __future__ import annotations

import argparse
import os
import time

BACKENDS = ("tensorflow", "jax", "torch")
if __name__ == "__main__":  # Keras fixes its backend when it is imported: --backend is read before that
    _early = argparse.ArgumentParser(add_help=False)
    _early.add_argument("--backend", choices=BACKENDS)
    if (_backend := _early.parse_known_args()[0].backend) is not None:
        os.environ["KERAS_BACKEND"] = _backend
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from layerlapse.reference.data import load_dataset  # noqa: E402  (numpy only: no torch needed)
from seed_table import print_seed_table  # noqa: E402  (beside this script)


def article_model(image_size: tuple[int, int], n_classes: int) -> keras.Sequential:
    def conv(name: str) -> layers.Conv2D:
        return layers.Conv2D(32, (2, 2), padding="same", kernel_initializer="he_normal", name=name)

    return keras.Sequential([
        keras.Input((*image_size, 1)),
        conv("conv2D_1"), conv("conv2D_2"), layers.Activation("relu", name="acti1"),
        layers.MaxPooling2D((2, 2), name="pool1"), layers.Dropout(0.2, name="drop1"),
        conv("conv2D_3"), conv("conv2D_4"), layers.Activation("relu", name="acti2"),
        layers.MaxPooling2D((2, 2), name="pool2"), layers.Dropout(0.2, name="drop2"),
        layers.Flatten(name="flat1"), layers.Dense(512, name="hidden"), layers.Activation("relu", name="acti3"),
        layers.Dense(n_classes, activation="softmax", name="end"),
    ])


def test_accuracy(seed: int, epochs: int, record: str | None = None, probe: int | None = None,
                  force: bool = False) -> tuple[float, float, float]:
    """(test accuracy, best validation accuracy, seconds) of one seeded run of the article's Keras code; with
    `record`, the fit is recorded into that run folder by layerlapse's callback."""
    dataset = load_dataset("mnist")
    n_classes = len(dataset.class_names)
    x_train = dataset.x_train[..., None].astype("float32") / 255
    x_test = dataset.x_test[..., None].astype("float32") / 255
    order = np.random.default_rng(seed).permutation(len(x_train))  # layerlapse's split_validation order
    keras.utils.set_random_seed(seed)
    model = article_model(dataset.x_train.shape[1:], n_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    callbacks = [] if record is None else [recording(dataset, x_train, x_test, record, probe, seed, force)]
    started = time.perf_counter()
    history = model.fit(x_train[order], keras.utils.to_categorical(dataset.y_train[order], n_classes),
                        batch_size=100, epochs=epochs, validation_split=0.2, verbose=0, callbacks=callbacks)
    _, accuracy = model.evaluate(x_test, keras.utils.to_categorical(dataset.y_test, n_classes), batch_size=500,
                                 verbose=0)
    return accuracy, max(history.history["val_accuracy"]), time.perf_counter() - started


def recording(dataset, x_train: np.ndarray, x_test: np.ndarray, out: str, probe: int | None, seed: int,
              force: bool) -> keras.callbacks.Callback:
    """layerlapse's callback as the article records: the "hidden" layer of the training images (all, or a
    stratified subset as `layerlapse run --probe` takes it), the test set once trained."""
    from layerlapse.capture import stratified_probe
    from layerlapse.integrations.keras import LayerlapseCallback

    chosen = stratified_probe(dataset.y_train, probe, seed)
    return LayerlapseCallback(["hidden"], probe=x_train[chosen], labels=dataset.y_train[chosen], out=out,
                              class_names=dataset.class_names, dataset="mnist", test_set=x_test,
                              test_labels=dataset.y_test, force=force,
                              training={"batch_size": 100, "seed": seed, "validation_split": 0.2})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--backend", choices=BACKENDS, help="Keras' backend (default: $KERAS_BACKEND or tensorflow)")
    parser.add_argument("--record", metavar="RUN_DIR",
                        help="record the fit with layerlapse's callback into RUN_DIR (RUN_DIR-seedN for several seeds)")
    parser.add_argument("--probe", type=int, help="record a stratified subset of N training images (default: all)")
    parser.add_argument("--force", action="store_true", help="replace an existing run folder")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]

    def out(seed: int) -> str | None:
        return args.record if args.record is None or len(seeds) == 1 else f"{args.record}-seed{seed}"

    print_seed_table(f"keras {keras.__version__} ({keras.backend.backend()}) · {args.epochs} epochs", seeds,
                     lambda seed: test_accuracy(seed, args.epochs, out(seed), args.probe, args.force))


if __name__ == "__main__":
    main()
