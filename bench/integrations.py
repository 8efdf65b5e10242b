"""What recording adds to an epoch in each way of training: a plain PyTorch loop with a `Recorder`, Lightning, Keras 3
(torch backend) and the Hugging Face `Trainer` with their layerlapse callbacks, each against the same training
without the callback, in the same process, one after the other.

The network is the article's CNN on MNIST's training images (a stratified subset with `--train`), batch 100, Adam;
the recording is the `hidden` layer of a 10,000-image probe and a 1,000-image test probe, mapped alongside training
by the worker process, as the built-in run does. An epoch's time is measured between the ends of consecutive epochs
(so the snapshot of the untrained network, the first, cold map and the final drawing, once per run, are not an
epoch's); the figure is the median over epochs 2..E, and the share is (with - without) / without.

    LAYERLAPSE_DATA=../shared/data python bench/integrations.py --train 20000 --epochs 4

Run it on a quiet machine: two trainings at once on 2 cores slow each other far more than 2x.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from layerlapse.capture import stratified_probe  # noqa: E402
from layerlapse.reference.data import load_dataset  # noqa: E402
from layerlapse.reference.models import build_model  # noqa: E402

CLASSES = [str(digit) for digit in range(10)]


def data(train: int, probe: int, test_probe: int, seed: int = 0) -> dict[str, np.ndarray]:
    mnist = load_dataset("mnist")
    keep = stratified_probe(mnist.y_train, train, seed)
    x = mnist.x_train[keep].astype(np.float32)[:, None] / 255
    y = mnist.y_train[keep].astype(np.int64)
    chosen = stratified_probe(y, probe, seed)
    tests = stratified_probe(mnist.y_test, test_probe, seed)
    return {"x": x, "y": y, "probe_x": x[chosen], "probe_y": y[chosen],
            "test_x": mnist.x_test[tests].astype(np.float32)[:, None] / 255, "test_y": mnist.y_test[tests]}


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def epoch_seconds(ends: list[float]) -> float:
    """Median time between the ends of epochs 1..E (epochs 2..E)."""
    return statistics.median(np.diff(ends)) if len(ends) > 1 else float("nan")


# ---- each way of training, with or without recording ------------------------------------------------------------
def plain(d: dict, epochs: int, out: str | None) -> list[float]:
    from layerlapse import Recorder

    torch.manual_seed(0)
    model = build_model((28, 28), 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    recorder = None
    if out is not None:
        recorder = Recorder(model, ["hidden"], torch.from_numpy(d["probe_x"]), labels=d["probe_y"], out=out,
                            class_names=CLASSES, test_probe=torch.from_numpy(d["test_x"]),
                            test_probe_labels=d["test_y"])
        recorder.start()
    ends = []
    generator = torch.Generator().manual_seed(0)
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in torch.randperm(len(x), generator=generator).split(100):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        if recorder is not None:
            recorder.epoch_end(epoch, metrics={"loss": loss.item()})
        ends.append(time.perf_counter())
    if recorder is not None:
        recorder.finish()
    return ends


def lightning(d: dict, epochs: int, out: str | None) -> list[float]:
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = build_model((28, 28), 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch, index):  # noqa: ANN001, ANN201
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):  # noqa: ANN201
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    ends: list[float] = []

    class Timer(L.Callback):
        def on_train_epoch_end(self, trainer, module) -> None:  # noqa: ANN001
            ends.append(time.perf_counter())

    callbacks: list = []
    if out is not None:
        from layerlapse.integrations.lightning import LayerlapseCallback

        callbacks.append(LayerlapseCallback(layers=["net.hidden"], probe=torch.from_numpy(d["probe_x"]),
                                            labels=d["probe_y"], out=out, class_names=CLASSES,
                                            test_probe=torch.from_numpy(d["test_x"]), test_probe_labels=d["test_y"]))
    callbacks.append(Timer())  # after the recording, so an epoch's end includes its snapshot
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(d["x"]),
                                                                        torch.from_numpy(d["y"])),
                                         batch_size=100, shuffle=True)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
    trainer.fit(Module(), loader)
    return ends


def keras_fit(d: dict, epochs: int, out: str | None) -> list[float]:
    import keras

    from keras_reference import article_model  # beside this script: the article's own network in Keras

    ends: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None) -> None:  # noqa: ANN001
            ends.append(time.perf_counter())

    keras.utils.set_random_seed(0)
    model = article_model((28, 28), 10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    callbacks: list = []
    if out is not None:
        from layerlapse.integrations.keras import LayerlapseCallback

        callbacks.append(LayerlapseCallback(layers=["hidden"], probe=d["probe_x"].transpose(0, 2, 3, 1),
                                            labels=d["probe_y"], out=out, class_names=CLASSES,
                                            test_probe=d["test_x"].transpose(0, 2, 3, 1),
                                            test_probe_labels=d["test_y"]))
    callbacks.append(Timer())
    model.fit(d["x"].transpose(0, 2, 3, 1), d["y"], batch_size=100, epochs=epochs, verbose=0, callbacks=callbacks)
    return ends


def hugging_face(d: dict, epochs: int, out: str | None) -> list[float]:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = build_model((28, 28), 10)

        def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
            logits = self.net(pixel_values)
            loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
            return {"loss": loss, "logits": logits} if loss is not None else {"logits": logits}

    class Images(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(d["x"])

        def __getitem__(self, index: int) -> dict:
            return {"pixel_values": torch.from_numpy(d["x"][index]), "labels": int(d["y"][index])}

    ends: list[float] = []

    class Timer(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            ends.append(time.perf_counter())

    callbacks: list = []
    if out is not None:
        from layerlapse.integrations.transformers import LayerlapseCallback

        callbacks.append(LayerlapseCallback(layers=["net.hidden"],
                                            probe={"pixel_values": torch.from_numpy(d["probe_x"])},
                                            labels=d["probe_y"], out=out, class_names=CLASSES,
                                            test_probe={"pixel_values": torch.from_numpy(d["test_x"])},
                                            test_probe_labels=d["test_y"]))
    callbacks.append(Timer())
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        arguments = TrainingArguments(output_dir=scratch, num_train_epochs=epochs, per_device_train_batch_size=100,
                                      learning_rate=1e-3, report_to=[], save_strategy="no", logging_strategy="no",
                                      use_cpu=True, disable_tqdm=True, dataloader_num_workers=0,
                                      lr_scheduler_type="constant", optim="adamw_torch", weight_decay=0.0)
        Trainer(model=Classifier(), args=arguments, train_dataset=Images(), callbacks=callbacks).train()
    return ends


WAYS: dict[str, Callable[[dict, int, str | None], list[float]]] = {
    "plain loop (Recorder)": plain, "Lightning": lightning, "Keras 3 (torch backend)": keras_fit,
    "Hugging Face Trainer": hugging_face}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20_000, help="training images (a stratified subset of MNIST)")
    parser.add_argument("--probe", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--ways", default=",".join(WAYS), help="comma-separated, from: " + ", ".join(WAYS))
    args = parser.parse_args()
    d = data(args.train, args.probe, 1_000)
    print(f"# {datetime.date.today()} · {cpu_name()} · {os.cpu_count()} cores · "
          f"torch {torch.__version__} · {args.train:,} training images, probe {args.probe:,}, "
          f"{args.epochs} epochs (median of epochs 2..{args.epochs})")
    print("| way | epoch without | epoch with layerlapse | added |")
    print("|---|---|---|---|")
    for name in [way.strip() for way in args.ways.split(",")]:
        without = epoch_seconds(WAYS[name](d, args.epochs, None))
        with tempfile.TemporaryDirectory() as folder:
            recorded = epoch_seconds(WAYS[name](d, args.epochs, os.path.join(folder, "run")))
        print(f"| {name} | {without:.2f} s | {recorded:.2f} s | {(recorded - without) / without:+.0%} |", flush=True)


if __name__ == "__main__":
    main()
