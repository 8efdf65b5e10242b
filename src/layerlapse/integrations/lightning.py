"""A time-lapse of chosen layers while Lightning trains: `LayerlapseCallback`, a thin adapter over the recording
session (`layerlapse.capture.session`) for `lightning.pytorch` (and a `pytorch_lightning` 2.x Trainer).

Copy, paste, run (about a minute on a laptop CPU; it writes runs/digits-lightning/report.html and lapse.gif):

    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import load_digits
    from torch import nn
    from torch.utils.data import DataLoader, Subset, TensorDataset

    from layerlapse.integrations.lightning import LayerlapseCallback

    digits = load_digits()
    x = torch.tensor(digits.images / 16, dtype=torch.float32).reshape(-1, 64)
    y = torch.tensor(digits.target)
    train, test = TensorDataset(x[:1500], y[:1500]), TensorDataset(x[1500:], y[1500:])


    class Digits(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("loss", loss, on_step=False, on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)


    if __name__ == "__main__":
        probe = DataLoader(Subset(train, range(300)), batch_size=100)  # fixed: the same 300 digits every epoch
        callback = LayerlapseCallback(layers=["net.1", "net.3"], probe=probe, out="runs/digits-lightning",
                                      class_names=[str(d) for d in range(10)], dataset="digits", test_set=test,
                                      force=True)
        checkpoints = pl.callbacks.ModelCheckpoint(dirpath="runs/digits-lightning-checkpoints", save_last=True)
        trainer = pl.Trainer(max_epochs=5, callbacks=[callback, checkpoints], logger=False)
        trainer.fit(Digits(), DataLoader(train, batch_size=32, shuffle=True))
        print(callback.run.path / "report.html")

Snapshots are taken when training starts (the untrained network) and after every epoch, or every N optimizer steps
(`every=N`) or at log-spaced steps (`every="log"`); then the test set is recorded and the run mapped and drawn.
Layer names are the LightningModule's `named_modules()` names (`layerlapse layers --model package.module:factory`
lists them). The epoch's metrics come from `trainer.callback_metrics`: log them with `self.log(...)`; "train_loss",
"train_acc", "val_accuracy" and the like are stored as loss, acc, val_loss and val_acc, which the report plots.

Resuming: the callback's state (its run folder) is saved in Lightning's checkpoints, so `trainer.fit(...,
ckpt_path=...)` with the same callback settings continues the same run folder after its last committed snapshot;
snapshots of epochs the resumed fit replays are not written again. Above, a fit stopped by Ctrl-C or a killed job
continues with `trainer.fit(..., ckpt_path="runs/digits-lightning-checkpoints/last.ckpt")` (the checkpoints are kept
outside the run folder, which holds only what layerlapse writes).

Several processes (DDP, any strategy whose processes each hold the whole model): each rank runs its own contiguous
share of the probe, test probe and test set through the model, rank 0 gathers the shares in probe order and is the
only one that writes. Every rank must be given the same probe (checked when the fit starts). Metrics logged with
`self.log(..., sync_dist=True)`, as Lightning advises under DDP, are stored as their average over the ranks; without
it, as rank 0's. Strategies that shard the model (FSDP, DeepSpeed, model parallel) are refused.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..capture.recorder import Recorder
from ..capture.shares import RankShares, Result, agree_at_start
from ..capture.spec import RecordingSpec
from ..config import RunConfig
from ..errors import ConfigError
from . import IntegrationError, require  # noqa: F401 - IntegrationError: what users catch
from . import check_version as check_lightning_version

if TYPE_CHECKING:
    from ..capture.session import RecordingSession
    from ..store.run import RunFolder

MINIMUM = (2, 0)
# the names Lightning users log an epoch's metrics under, and the names the report plots them by
METRIC_NAMES = {
    "loss": ("loss", "train_loss", "training_loss"),
    "acc": ("acc", "train_acc", "accuracy", "train_accuracy", "training_accuracy"),
    "val_loss": ("val_loss", "valid_loss", "validation_loss"),
    "val_acc": ("val_acc", "val_accuracy", "valid_acc", "valid_accuracy", "validation_accuracy"),
}


def check_version(version: str, package: str = "lightning") -> None:
    """A one-line IntegrationError for a Lightning older than the callback supports (2.0)."""
    check_lightning_version(package, version, "lightning", MINIMUM)


def _import_lightning() -> Any:
    """`lightning.pytorch`, or `pytorch_lightning` where only that is installed; the install hint when neither is."""
    if importlib.util.find_spec("lightning") is None and importlib.util.find_spec("pytorch_lightning") is not None:
        return require("pytorch_lightning", "lightning", MINIMUM)
    require("lightning", "lightning", MINIMUM)
    return importlib.import_module("lightning.pytorch")


pl = _import_lightning()


class LayerlapseCallback(pl.Callback):
    """Records what `layers` of the LightningModule output for a fixed `probe` into the run folder `out`, at the
    start of training and after every epoch (or as `every` says), then maps and draws the lapse.

    The recording arguments are the `Recorder`'s (see `layerlapse.capture.Recorder`): the probe (a tensor, array,
    tuple or dict of tensors, Dataset or DataLoader, with `labels` unless it yields them), `class_names`, an optional
    `test_probe` (drawn on the same maps) and `test_set` (recorded once, after training), `reduce` and `output` for
    layers whose output is not one row per input, `config` (map settings), `force` to replace an old run in `out`,
    `draw=False` to stop after recording (draw later with `layerlapse render`). `training` states settings for the
    manifest (batch_size, learning_rate, …); the epoch count and the Trainer's strategy are added from the Trainer.

    These are the recording spec, the same as the `Recorder`'s and every callback's, in the same order:
    `layerlapse.RecordingSpec` documents each.

    Parameters
    ----------
    layers, probe, labels, out : the first four, positional or by name
        The layers to record, the fixed probe inputs, their class indices (unless the probe carries them) and the run
        folder (needed here).
    texts, class_names, dataset, test_probe, test_probe_labels, test_set, test_labels : optional, by name
        One text (or caption) per probe item, shown in the report; the classes' names, the data's name, and test
        inputs (drawn on every frame; recorded once after training) with their labels.
    every, reduce, output, tokenizer, batch_size, training, config, force, resume, draw, live : optional, by name
        When snapshots are taken, how a layer's output becomes a row, the map's settings and how the run ends.
        `live=True` in a notebook shows the lapse under the cell, each snapshot added as it is mapped.
        `resume` None (the default): continue the run when the fit resumes from a checkpoint.
    """

    def __init__(self, layers: Sequence[str] | str, probe: Any, labels: Any = None,
                 out: str | os.PathLike | None = None, *,
                 texts: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                 dataset: str = "own data", test_probe: Any = None, test_probe_labels: Any = None,
                 test_set: Any = None, test_labels: Any = None, every: str | int = "epoch",
                 reduce: str | dict[str, str] = "flatten", output: int | str | dict[str, int | str] | None = None,
                 tokenizer: Any = None,
                 batch_size: int = 250, training: dict[str, Any] | None = None, config: RunConfig | None = None,
                 force: bool = False, resume: bool | None = None, draw: bool = True, live: bool = False) -> None:
        super().__init__()
        self.spec = RecordingSpec.for_callback(locals())  # checked now, before the fit
        self.out = Path(self.spec.out)
        self.schedule = self.spec.schedule
        self.draw = draw
        self._resuming = False  # set by load_state_dict: this fit continues the run recorded in `out`
        self.recorder_: Recorder | None = None
        self.shares_: RankShares | None = None
        self._finished: RunFolder | None = None
        self._last_step = -1  # the optimizer step of the last batch-end event

    def __repr__(self) -> str:
        return (f"LayerlapseCallback(out={str(self.out)!r}, layers={list(self.spec.layers)!r}, "
                f"{self.schedule.describe()}, run={self.run!r})")

    @property
    def state_key(self) -> str:
        # one state per run folder: a Trainer may hold several callbacks that record into different folders
        return self._generate_state_key(out=str(self.out))

    @property
    def run(self) -> RunFolder | None:
        """The run folder being written, or written by the last fit (rank 0 only; None on other ranks)."""
        session = self._session()
        return self._finished if session is None else session.run

    # ---- Lightning's events ------------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        check_version(_package_version(trainer), type(trainer).__module__.split(".")[0])
        _check_strategy(trainer)
        _check_forward(pl_module)
        rank, world = trainer.global_rank, trainer.world_size
        self.recorder_, self.shares_, self._finished = None, None, None
        failure: BaseException | None = None
        try:
            self.recorder_ = self._recorder(trainer, pl_module, rank)
            self.shares_ = RankShares(self.recorder_, rank, world)
            if rank == 0:
                self.recorder_.recording_session().capture = self.shares_  # rank 0's session captures across the ranks
            fingerprint = self.shares_.fingerprint() if world > 1 else {}
        except BaseException as error:
            failure, fingerprint = error, {}
        agree_at_start(failure, fingerprint, rank, world)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # here, not in on_fit_start: a resumed fit has its epoch and step back only now
        step = trainer.global_step if self.schedule.by_steps else None
        self._last_step = trainer.global_step
        self._together(lambda session: session.start(step=step, epoch=trainer.current_epoch))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step:  # a batch that only accumulated gradients: no optimizer step, no new snapshot
            return
        self._last_step = step
        if self.schedule.by_steps and self.schedule.due_at_step(step):  # the same answer on every rank
            self._together(lambda session: session.step_end(step, epoch=trainer.current_epoch))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        # no step under the epoch schedule: its frames are titled "Epoch N", as the built-in loop's are
        epoch, step = trainer.current_epoch + 1, trainer.global_step if self.schedule.by_steps else None
        # read on every rank, before the callback's own collectives: reading a metric logged with sync_dist=True
        # averages it over the ranks (a collective of Lightning's), so a read on rank 0 alone, inside the event,
        # waited for ranks that were waiting in the event's broadcast
        metrics = epoch_metrics(trainer.callback_metrics)
        self._together(lambda session: session.epoch_end(epoch, step=step, metrics=metrics))

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        step = trainer.global_step if self.schedule.by_steps else None
        run = self._together(lambda session: _finish(session, step=step, epoch=trainer.current_epoch))
        recorder, self.recorder_ = self.recorder_, None
        recorder.close()
        if run is not None:  # rank 0 alone: the other ranks are done
            self._finished = run
            recorder.session.complete(draw=self.draw)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        recorder, self.recorder_ = self.recorder_, None
        if recorder is None:
            return
        if recorder.session is not None:
            recorder.session.abort(interrupted=isinstance(exception, KeyboardInterrupt))
        recorder.close()

    # ---- resuming ----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        session = self._session()
        if session is not None:
            return session.state_dict()
        return {"out": str(self.out), "snapshots_complete": None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resuming = True  # the state is this callback's (its key holds `out`): continue the run there

    # ---- inside ------------------------------------------------------------------------------------------------------
    def _recorder(self, trainer: Any, pl_module: Any, rank: int) -> Recorder:
        """Every rank's Recorder captures; rank 0's alone writes the run folder (the others are given none)."""
        if rank != 0:
            return Recorder.from_spec(pl_module, self.spec.replace(out=None), device=pl_module.device)
        resume = self.spec.resume if self.spec.resume is not None else self._resuming
        training = {**_trainer_settings(trainer), **(self.spec.training or {})}
        return Recorder.from_spec(pl_module, self.spec.replace(training=training, resume=resume),
                                  device=pl_module.device, source="lightning")

    def _session(self) -> RecordingSession | None:
        return None if self.recorder_ is None else self.recorder_.session

    def _together(self, event: Callable[[RecordingSession], Result]) -> Result | None:
        """Rank 0 runs `event` on its session while the other ranks serve the captures it asks for; None there."""
        if self.shares_ is None:
            raise RuntimeError("the layerlapse callback was not set up: on_fit_start did not run (call trainer.fit)")
        session = self._session()
        if session is not None:
            return self.shares_.lead(lambda: event(session))
        self.shares_.follow()
        return None


def _finish(session: RecordingSession, *, step: int | None, epoch: int) -> RunFolder:
    """Record the test set (shared between the ranks). A fit resumed after its last epoch trains nothing, and
    Lightning then skips on_train_start: the run is reopened here."""
    if session.run is None:
        session.start(step=step, epoch=epoch)
    return session.finish(step=step, epoch=epoch)  # under a step schedule, the final network too


# ---- the Trainer ---------------------------------------------------------------------------------------------------
def _package_version(trainer: Any) -> str:
    """The version of the package the Trainer comes from (lightning or pytorch_lightning)."""
    return str(getattr(sys.modules.get(type(trainer).__module__.split(".")[0]), "__version__", "0"))


def _check_strategy(trainer: Any) -> None:
    strategy = trainer.strategy
    if getattr(strategy, "restore_checkpoint_after_setup", False):
        raise ConfigError(f"the layerlapse callback cannot record under {type(strategy).__name__}, which shards the "
                          "model: train with a strategy whose processes each hold the whole model (single device, "
                          "ddp)")
    if trainer.world_size > 1 and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise ConfigError(f"the layerlapse callback needs torch.distributed under {type(strategy).__name__} with "
                          f"{trainer.world_size} processes: use strategy='ddp'")


def _check_forward(pl_module: Any) -> None:
    """The probe runs through `pl_module(x)`: a LightningModule whose steps call a submodule has no forward."""
    forward = getattr(type(pl_module), "forward", None)
    if getattr(forward, "__qualname__", "") in ("LightningModule.forward", "Module._forward_unimplemented"):
        raise ConfigError(f"{type(pl_module).__name__} has no forward(): the probe runs through the module as "
                          "module(x); define forward(self, x) (e.g. return self.net(x))")


def _trainer_settings(trainer: Any) -> dict[str, Any]:
    """What the manifest states about the training from the Trainer: epochs, framework, strategy and processes."""
    settings: dict[str, Any] = {"framework": f"{type(trainer).__module__.split('.')[0]} {_package_version(trainer)}",
                                "strategy": type(trainer.strategy).__name__, "processes": trainer.world_size}
    if isinstance(trainer.max_epochs, int) and trainer.max_epochs > 0:
        settings["epochs"] = trainer.max_epochs
    return settings


def epoch_metrics(callback_metrics: Mapping[str, Any]) -> dict[str, float]:
    """An epoch's logged scalars as floats, each once (what was logged as "x" on step and epoch is "x": Lightning's
    "x_step" copy is dropped, its "x_epoch" copy named "x"), the usual names of loss and accuracy (`METRIC_NAMES`)
    given the names the report plots."""
    values: dict[str, float] = {}
    for name, value in callback_metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values[str(name)] = float(value)
    for name in [name for name in values if name.endswith(("_step", "_epoch"))]:
        base = name.rsplit("_", 1)[0]
        value = values.pop(name)
        if base not in values and name.endswith("_epoch"):
            values[base] = value
    for canonical, names in METRIC_NAMES.items():
        found = next((name for name in names if name in values), None)
        if found is not None and canonical not in values:
            values[canonical] = values.pop(found)
    return values
