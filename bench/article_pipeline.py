"""The article's whole pipeline in its own code's shape, for a race against `layerlapse run --probe all`.

Keras trains the reference network (the recipe of `bench/keras_reference.py`); before every epoch's update, and
after the last, the "hidden" layer of all 60,000 training images is predicted, mapped by a fresh UMAP
(n_neighbors=40, as the article: no warm start, no seed) and drawn as a matplotlib scatter coloured by digit
(tab10, colour bar, "Epoch i"); then the frames become a GIF (500 ms a frame), the test set is placed on the final
map (`reducer.transform`) and drawn as gold stars, and the curves and the confusion matrix are drawn. Prints each
stage's seconds per epoch and the whole.

It needs Keras, umap-learn and matplotlib, in an environment of its own (as `bench/keras_reference.py` says):

    python3 -m venv .venv-keras && .venv-keras/bin/pip install tensorflow-cpu umap-learn matplotlib pillow \
        && .venv-keras/bin/pip install --no-deps -e .
    LAYERLAPSE_DATA=../shared/data .venv-keras/bin/python bench/article_pipeline.py --epochs 15 --out /tmp/article

`bench/whole_run.py` runs it beside layerlapse's own run, whole processes, one after the other.
"""

from __future__ import annotations

import argparse
import collections
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from keras_reference import article_model  # noqa: E402  (beside this script)
from layerlapse.reference.data import load_dataset  # noqa: E402  (numpy only)


class Stages:
    """Seconds spent in each named stage, summed over the run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = collections.defaultdict(float)

    def timed(self, name: str, action, *args, **kwargs):
        started = time.perf_counter()
        result = action(*args, **kwargs)
        self.seconds[name] += time.perf_counter() - started
        return result


def scatter(path: Path, xy: np.ndarray, labels: np.ndarray, title: str, stars: np.ndarray | None = None) -> None:
    figure, axes = plt.subplots(figsize=(8, 7))
    points = axes.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=1)
    if stars is not None:
        axes.scatter(stars[:, 0], stars[:, 1], marker="*", c="gold", s=20, edgecolors="k", linewidths=0.2)
    figure.colorbar(points, ticks=range(10))
    axes.set_title(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    import umap  # the article's mapper; imported (and its code compiled) inside the timed run

    stages = Stages()
    args.out.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset("mnist")
    x_train = dataset.x_train[..., None].astype("float32") / 255
    x_test = dataset.x_test[..., None].astype("float32") / 255
    y_train = keras.utils.to_categorical(dataset.y_train, 10)
    keras.utils.set_random_seed(args.seed)
    model = article_model(dataset.x_train.shape[1:], 10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    hidden = keras.Model(model.inputs, model.get_layer("hidden").output)
    history: dict[str, list[float]] = collections.defaultdict(list)
    frames, reducer = [], None
    for epoch in range(args.epochs + 1):
        activations = stages.timed("predict", hidden.predict, x_train, batch_size=500, verbose=0)
        reducer = umap.UMAP(n_neighbors=40)
        xy = stages.timed("umap", reducer.fit_transform, activations)
        frames.append(args.out / f"epoch_{epoch:03d}.png")
        stages.timed("plot", scatter, frames[-1], xy, dataset.y_train, f"Epoch {epoch}")
        if epoch < args.epochs:
            fitted = stages.timed("fit", model.fit, x_train, y_train, batch_size=100, epochs=1,
                                  validation_split=0.2, verbose=0)
            for key, values in fitted.history.items():
                history[key] += values
    test_xy = stages.timed("test", lambda: reducer.transform(hidden.predict(x_test, batch_size=500, verbose=0)))
    stages.timed("plot", scatter, args.out / "test.png", xy, dataset.y_train, "Test set", test_xy)
    images = [Image.open(frame) for frame in frames]
    stages.timed("gif", images[0].save, args.out / "lapse.gif", save_all=True, append_images=images[1:],
                 duration=500, loop=0)
    predicted = model.predict(x_test, batch_size=500, verbose=0).argmax(axis=1)
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (dataset.y_test, predicted), 1)
    figure, (curves, matrix) = plt.subplots(1, 2, figsize=(12, 5))
    for key, values in history.items():
        curves.plot(range(1, len(values) + 1), values, label=key)
    curves.legend()
    matrix.imshow(confusion, cmap="Blues")
    figure.savefig(args.out / "figures.png", dpi=100)
    plt.close(figure)
    total = time.perf_counter() - started
    per_epoch = {name: round(seconds / (args.epochs + 1 if name in ("predict", "umap", "plot") else max(args.epochs, 1)), 1)
                 for name, seconds in stages.seconds.items() if name in ("predict", "umap", "plot", "fit")}
    print(f"article pipeline: {args.epochs} epochs in {total:.1f} s; per epoch {per_epoch}; "
          f"test accuracy {float((predicted == dataset.y_test).mean()):.4f}", flush=True)


if __name__ == "__main__":
    main()
