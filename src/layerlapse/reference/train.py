"""The built-in training loop of the reference experiment, recording with the same Recorder users call.

Repeatable on the CPU: the validation split, each epoch's shuffle and each epoch's dropout masks come from seeds
derived from the run's seed and the epoch number, so a run resumed after epoch k continues exactly as it would have.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..capture.inputs import stratified_probe
from ..capture.recorder import Recorder, find_layers
from ..capture.session import Inputs, RecordingSession, loss_and_accuracy
from ..config import RunConfig
from .data import Dataset, load_dataset
from ..errors import ConfigError, RunFolderError
from .._util.memory import keep_freed_memory
from .models import build_model
from ..capture.modes import evaluating
from .._util.progress import note, progress_bar
from ..store import layout
from ..store.run import RunFolder

EVAL_BATCH = 250  # as capture: larger batches make 100 MB tensors that page-fault on every allocation


@dataclass(frozen=True)
class EpochResult:
    loss: float
    acc: float
    val_loss: float
    val_acc: float
    seconds: float

    def row(self, epoch: int) -> dict[str, float]:
        return {"epoch": epoch, "loss": self.loss, "acc": self.acc, "val_loss": self.val_loss,
                "val_acc": self.val_acc, "seconds": self.seconds}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no CUDA GPU: use --device cpu or auto")
    return torch.device(name)


def images_to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W) → float32 (N, 1, H, W) in [0, 1], once, so batches are plain slices."""
    x = torch.from_numpy(images).to(device).unsqueeze(1).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last)


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """On the device, in channels_last layout: measured 15-20 % faster for these 2×2 convolutions on the CPU."""
    return model.to(device=device, memory_format=torch.channels_last)


KERAS_EPSILON = 1e-7  # Keras' Adam default (torch's is 1e-8)


def make_optimizer(model: nn.Module, learning_rate: float, *, fused: bool = True) -> torch.optim.Optimizer:
    """Keras' Adam, as the article trained with: fused into one kernel where this torch supports it (CPU since
    torch 2.4) unless `fused` is false, with Keras' epsilon in Keras' place (see `KerasEpsilon`)."""
    if fused:
        try:
            optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, eps=KERAS_EPSILON, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a torch or a device without the fused kernel
            fused = False
    if not fused:
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, eps=KERAS_EPSILON)
    KerasEpsilon().attach(optimizer)
    return optimizer


class KerasEpsilon:
    """Keras adds epsilon to sqrt(v) before the bias correction, torch after it: Keras' step t is torch's step with
    epsilon / sqrt(1 - beta2^t), exactly. That is 3e-6 at the first step and 1.6e-7 after an MNIST epoch, where
    torch's default stays 1e-8. The step is counted here rather than read from the optimizer's state at every step
    (a device tensor, which would make the GPU wait); it is read once, after the state is loaded, so a resumed run
    continues it."""

    def __init__(self) -> None:
        self.steps_taken: int | None = None

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.register_step_pre_hook(self.before_step)
        optimizer.register_load_state_dict_post_hook(self.after_load)

    def before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.steps_taken is None:
            self.steps_taken = _steps_taken(optimizer)
        self.steps_taken += 1
        for group in optimizer.param_groups:
            group["eps"] = KERAS_EPSILON / math.sqrt(1.0 - group["betas"][1] ** self.steps_taken)

    def after_load(self, optimizer: torch.optim.Optimizer) -> None:
        self.steps_taken = None


def _steps_taken(optimizer: torch.optim.Optimizer) -> int:
    steps = [int(state["step"]) for state in optimizer.state.values() if "step" in state]
    return max(steps, default=0)


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keras' validation_split on a seeded shuffle: the last `fraction` of the shuffled order is held out."""
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(math.floor(n * (1.0 - fraction)))  # Keras keeps the floor for training
    return order[:n_train], order[n_train:]


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                train_indices: np.ndarray, batch_size: int, seed: int, *, show_progress: bool = True,
                description: str = "training") -> tuple[float, float]:
    """One pass over the training part in a seeded order; returns the mean loss and accuracy."""
    model.train()
    torch.manual_seed(seed)  # dropout masks
    with _flushing_denormals():
        return _train_batches(model, optimizer, x, y, train_indices, batch_size, seed, show_progress, description)


@contextlib.contextmanager
def _flushing_denormals() -> Iterator[None]:
    """Tiny gradients late in training turn into denormal floats, which the CPU handles slowly; flushing them to
    zero changes nothing a float32 result can show. Turned off afterwards (torch's default): the setting is
    process-wide, and torch cannot say what it was before."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _train_batches(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                   train_indices: np.ndarray, batch_size: int, seed: int, show_progress: bool,
                   description: str) -> tuple[float, float]:
    order = torch.from_numpy(np.random.default_rng(seed).permutation(train_indices)).to(x.device)
    total_loss = torch.zeros((), device=x.device)
    total_correct = torch.zeros((), device=x.device, dtype=torch.long)
    n_batches = (len(order) + batch_size - 1) // batch_size
    with progress_bar(description, n_batches, enabled=show_progress) as advance:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            logits = model(x[batch])
            loss = F.cross_entropy(logits, y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.detach() * len(batch)
            total_correct += (logits.detach().argmax(1) == y[batch]).sum()
            advance(1)
    return total_loss.item() / len(order), total_correct.item() / len(order)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and class probabilities, in eval mode (the training mode is restored)."""
    with evaluating(model):
        logits = torch.cat([model(x[start:start + EVAL_BATCH]) for start in range(0, len(x), EVAL_BATCH)])
    loss = F.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(1) == y).sum().item() / len(y)  # exact, not a float32 mean
    return loss, accuracy, torch.softmax(logits.float(), 1).cpu().numpy()


validation_from_probabilities = loss_and_accuracy  # mean cross-entropy and accuracy from class probabilities


def rows_in_probe(probe_indices: np.ndarray, wanted: np.ndarray, n: int) -> np.ndarray | None:
    """Where each of the `wanted` sample indices sits in the probe, or None when the probe lacks any of them."""
    position = np.full(n, -1, dtype=np.int64)
    position[probe_indices] = np.arange(len(probe_indices))
    rows = position[wanted]
    return None if len(rows) == 0 or (rows < 0).any() else rows


def save_checkpoint(run: RunFolder, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Model and optimizer state in torch's format, loadable with weights_only=True (no arbitrary unpickling)."""
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    run.write_bytes(layout.checkpoint(epoch), buffer.getvalue())


def load_checkpoint(run: RunFolder, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """The model and optimizer of `epoch`, read as plain tensors (weights_only=True): a file holding anything else
    is refused, never unpickled."""
    relpath = layout.checkpoint(epoch)
    if not run.has(relpath):
        raise RunFolderError(f"run folder {run.path} has no checkpoint for epoch {epoch} to resume from: "
                             "record the run again with --force")
    try:
        state = torch.load(run.local(relpath), map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except RunFolderError:
        raise
    except Exception:  # torch's own message would advise unpickling the file: never
        raise RunFolderError(f"run folder {run.path}: {relpath} is not a checkpoint layerlapse can load (damaged, "
                             "from another network, or holding objects other than tensors, which are never "
                             "unpickled); restore it, or record the run again with --force") from None


def record_run(config: RunConfig, out: str, *, data_dir: str | None = None, force: bool = False,
               resume: bool = False, show_progress: bool = True,
               on_epoch: Callable[[RunFolder, int], None] | None = None) -> RunFolder:
    """Train the reference network and record the probe set's activations before training and after every epoch.

    With `resume`, the run in `out` continues from its last complete epoch with its stored settings. `on_epoch(run,
    epoch)` is called after each epoch is committed (the pipeline starts mapping it there).

    Records only: `run_experiment` is this, then the maps, pictures and report. The run is returned open, its lock
    held: map and draw it (`map_run`, `render_run`) or not, then give the lock back with `run.close()`.

    Parameters
    ----------
    config : RunConfig
        What to train and record (its `loop` "built-in").
    out : str
        The run folder to write: absent or empty, unless `force` (which replaces only a layerlapse run) or
        `resume` is given.
    data_dir : str, optional
        Where to look for the dataset's files first, and where to download them (see `load_dataset`).
    force : bool, default False
        Replace the run already in `out`.
    resume : bool, default False
        Continue the interrupted run in `out`; `config` is then read from it.
    show_progress : bool, default True
        Progress bars on stderr.
    on_epoch : callable, optional
        Called as `on_epoch(run, epoch)` after each epoch's snapshot (epoch 0: before training) is committed.

    Returns
    -------
    RunFolder
        The recorded run, open and locked.

    Examples
    --------
    >>> from layerlapse import RunConfig, record_run
    >>> run = record_run(RunConfig(dataset="digits", epochs=2), "runs/recorded", show_progress=False)
    >>> run.epochs_complete
    2
    >>> run.close()
    """
    keep_freed_memory()  # the first epoch, validation and snapshots without a page fault per batch
    if resume:
        config = RunFolder.open(out, verify=False).config  # checked again, under the lock, when reopened
    dataset = _subset(load_dataset(config.dataset, data_dir=data_dir), config)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    model = prepare_model(build_model(dataset.x_train.shape[1:], len(dataset.class_names)), device)
    find_layers(model, config.layers, "`layerlapse layers`")  # an unknown layer fails before any writing
    optimizer = make_optimizer(model, config.learning_rate)
    probe_indices = stratified_probe(dataset.y_train, config.probe, config.data_seed)
    if len(probe_indices) <= config.n_neighbors:
        raise ConfigError(f"UMAP with n_neighbors={config.n_neighbors} needs more than {config.n_neighbors} points "
                          f"but the probe holds {len(probe_indices)} images: use a larger --subset/--probe or "
                          "lower --neighbors")
    x = images_to_tensor(dataset.x_train, device)
    test_indices = _test_probe_indices(dataset, config)
    recorder = Recorder(model, config.layers, x[probe_indices], device=device,
                        test_probe=None if test_indices is None else images_to_tensor(dataset.x_test[test_indices],
                                                                                      device),
                        test_set=images_to_tensor(dataset.x_test, device) if len(dataset.y_test) else None)
    session = RecordingSession(
        out, recorder, _inputs(dataset, probe_indices, test_indices), config,
        dataset=_dataset_info(dataset, probe_indices), training=TRAINING, force=force, resume=resume,
        on_snapshot=on_epoch)
    try:
        with recorder:
            session.run = session._open()
            recorder.spool_into(session.run)  # snapshots written a batch at a time into the run folder
            with session.run.noting_failure():
                _train_and_record(session, recorder, config, dataset, x, model, optimizer, probe_indices, device,
                                  show_progress)
    except BaseException:
        if session.run is not None:
            session.run.close()
        raise
    return session.run


# what the built-in loop does, stated in the manifest beside the settings
TRAINING = {"loop": "layerlapse built-in", "optimizer": "Adam (Keras' epsilon)", "loss": "cross-entropy",
            "network": "the article's CNN (layerlapse.reference.models.ReferenceCNN)"}


def _inputs(dataset: Dataset, probe_indices: np.ndarray, test_indices: np.ndarray | None) -> Inputs:
    """The probe's and the test images' labels and thumbnails, as the session writes them."""
    has_test = len(dataset.y_test) > 0
    return Inputs(dataset.y_train[probe_indices], list(dataset.class_names), dataset.x_train[probe_indices],
                  None if test_indices is None else dataset.y_test[test_indices],
                  None if test_indices is None else dataset.x_test[test_indices],
                  dataset.y_test if has_test else None, probe_indices, test_indices)


def _train_and_record(session: RecordingSession, recorder: Recorder, config: RunConfig, dataset: Dataset,
                      x: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, probe_indices: np.ndarray,
                      device: torch.device, show_progress: bool) -> None:
    run = session.run
    y = torch.from_numpy(dataset.y_train).to(device)
    train_indices, val_indices = split_validation(len(x), config.validation_split, config.seed)
    # A probe that holds every validation image (--probe all, as the article) runs them with the epoch's weights in
    # eval mode anyway: its snapshot gives the validation loss and accuracy, and the run skips a second pass over
    # them (1.4 s an epoch for MNIST's 12,000 on 2 cores).
    val_rows = rows_in_probe(probe_indices, val_indices, len(x))
    val_x, val_y = (x[val_indices], y[val_indices]) if val_rows is None else (None, None)
    if run.epochs_complete < 0:
        session.snapshot(epoch=0, extra=_checkpointing(model, optimizer))
    else:
        note(f"resuming {run.path} after epoch {run.epochs_complete} of {config.epochs}", enabled=show_progress)
        load_checkpoint(run, run.epochs_complete, model, optimizer)
    for epoch in range(run.epochs_complete + 1, config.epochs + 1):
        started = time.perf_counter()
        loss, acc = train_epoch(model, optimizer, x, y, train_indices, config.batch_size,
                                seed=config.seed * 100_003 + epoch, show_progress=show_progress,
                                description=f"epoch {epoch}/{config.epochs}")
        captured = None
        if val_rows is None:
            val_loss, val_acc, _ = evaluate(model, val_x, val_y)
            seconds = time.perf_counter() - started
        else:
            seconds = time.perf_counter() - started  # the snapshot is the recording's, not the epoch's
            captured = recorder.capture("probe")
            val_loss, val_acc = validation_from_probabilities(captured.probabilities[val_rows],
                                                              dataset.y_train[val_indices])
        result = EpochResult(loss, acc, val_loss, val_acc, seconds)
        metrics = {key: value for key, value in result.row(epoch).items() if key != "epoch"}
        session.snapshot(epoch=epoch, metrics=metrics, captured=captured, extra=_checkpointing(model, optimizer))
        run.local(layout.checkpoint(epoch - 1)).unlink(missing_ok=True)  # committed without it: now deleted
        note(f"epoch {epoch}/{config.epochs}: loss {loss:.4f} acc {acc:.4f} val_loss {val_loss:.4f} "
             f"val_acc {val_acc:.4f} ({seconds:.1f} s)", enabled=show_progress)
    session.finish()


def _checkpointing(model: nn.Module, optimizer: torch.optim.Optimizer) -> Callable[[RunFolder, int], None]:
    """Written into each snapshot's commit: the model and optimizer of that epoch, the previous one unlisted (only
    the newest checkpoint is kept; its file is deleted once the new commit is on disk)."""
    def write(run: RunFolder, epoch: int) -> None:
        save_checkpoint(run, epoch, model, optimizer)
        run.forget(layout.checkpoint(epoch - 1))
    return write


def _test_probe_indices(dataset: Dataset, config: RunConfig) -> np.ndarray | None:
    """The test images recorded every epoch (to place on every frame), or None."""
    if config.test_probe == 0 or len(dataset.y_test) == 0:
        return None
    return stratified_probe(dataset.y_test, config.test_probe, config.data_seed)


def _subset(dataset: Dataset, config: RunConfig) -> Dataset:
    if config.train_subset is None:
        return dataset
    keep = stratified_probe(dataset.y_train, config.train_subset, config.data_seed)
    return dataclasses.replace(dataset, x_train=dataset.x_train[keep], y_train=dataset.y_train[keep])


def _dataset_info(dataset: Dataset, probe_indices: np.ndarray) -> dict[str, Any]:
    return {"name": dataset.name, "source": dataset.source, "class_names": list(dataset.class_names),
            "train_size": int(len(dataset.y_train)), "test_size": int(len(dataset.y_test)),
            "image_shape": list(dataset.x_train.shape[1:]), "probe_size": int(len(probe_indices))}
