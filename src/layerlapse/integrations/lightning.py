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

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, Subset

from ..capture.probe import ProbeInputs
from ..capture.recorder import Recorder
from ..capture.session import Captured, Schedule
from ..config import RunConfig
from ..errors import ConfigError, LayerlapseError
from . import IntegrationError, collectives, require  # noqa: F401 - IntegrationError: what users catch
from . import check_version as check_lightning_version

if TYPE_CHECKING:
    from ..capture.session import RecordingSession
    from ..store.run import RunFolder

MINIMUM = (2, 0)
INPUT_SETS = ("probe", "test_probe", "test_set")
# the names Lightning users log an epoch's metrics under, and the names the report plots them by
METRIC_NAMES = {
    "loss": ("loss", "train_loss", "training_loss"),
    "acc": ("acc", "train_acc", "accuracy", "train_accuracy", "training_accuracy"),
    "val_loss": ("val_loss", "valid_loss", "validation_loss"),
    "val_acc": ("val_acc", "val_accuracy", "valid_acc", "valid_accuracy", "validation_accuracy"),
}
Result = TypeVar("Result")


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
    """

    def __init__(self, layers: Sequence[str] | str, probe: Any, *, out: str | os.PathLike, labels: Any = None,
                 class_names: Sequence[str] | None = None, dataset: str = "own data", test_probe: Any = None,
                 test_probe_labels: Any = None, test_set: Any = None, test_labels: Any = None,
                 every: str | int = "epoch", reduce: str | dict[str, str] = "flatten",
                 output: int | str | dict[str, int | str] | None = None, training: dict[str, Any] | None = None,
                 config: RunConfig | None = None, force: bool = False, batch_size: int = 250,
                 draw: bool = True) -> None:
        super().__init__()
        self.out = Path(out)
        self.schedule = Schedule(every)  # a bad `every` is refused here, before the fit
        self.draw = draw
        # what every rank's Recorder takes, and what only rank 0's (which writes) takes besides
        self._capture_args = {"layers": layers, "probe": probe, "test_probe": test_probe, "test_set": test_set,
                              "reduce": reduce, "output": output, "batch_size": batch_size}
        self._writer_args = {"labels": labels, "class_names": class_names, "dataset": dataset,
                             "test_probe_labels": test_probe_labels, "test_labels": test_labels, "every": every,
                             "config": config, "force": force, "draw": draw}
        self._training = dict(training or {})
        self._resuming = False  # set by load_state_dict: this fit continues the run recorded in `out`
        self.recorder_: Recorder | None = None
        self.shares_: RankShares | None = None
        self._finished: RunFolder | None = None
        self._last_step = -1  # the optimizer step of the last batch-end event

    def __repr__(self) -> str:
        return (f"LayerlapseCallback(out={str(self.out)!r}, layers={self._capture_args['layers']!r}, "
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
        if world > 1:  # every rank learns of any rank's failure, so none waits for a rank that has stopped
            reports = collectives.all_gather(_report(failure, fingerprint))
            _raise_first_failure(reports, rank, failure)
            check_same_probe(reports)
        elif failure is not None:
            raise failure

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
        if run is None:
            return
        self._finished = run
        try:
            if self.draw:  # rank 0 alone: the other ranks are done
                from ..recipe.steps import complete_run

                complete_run(run, recorder.session.on_snapshot)
        finally:
            run.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        recorder, self.recorder_ = self.recorder_, None
        if recorder is None:
            return
        session = recorder.session
        if session is not None:
            session.failed(interrupted=isinstance(exception, KeyboardInterrupt))  # and gives back the lock
            stop = getattr(session.on_snapshot, "stop", None)
            if stop is not None:
                stop()  # the mapping worker
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
        args = dict(self._capture_args, device=pl_module.device)
        if rank != 0:
            return Recorder(pl_module, **args)
        training = {**_trainer_settings(trainer), **self._training}
        return Recorder(pl_module, **args, **self._writer_args, out=self.out, training=training,
                        resume=self._resuming)

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


class RankShares:
    """The session's Capture across the processes of a fit: each rank runs its contiguous share of the inputs,
    rank 0 gathers them in order. Rank 0 `lead`s an event (its session asks for captures, each announced to the
    others); the other ranks `follow`: they capture their share whenever asked, until rank 0 says it is done
    (or failed, when they fail too). One process is the plain Recorder."""

    def __init__(self, recorder: Recorder, rank: int, world: int) -> None:
        self.recorder = recorder
        self.rank, self.world = rank, world
        self.layers = recorder.layers
        self._dtypes: dict[str, str] = {}
        self._shares: dict[str, ProbeInputs | None] = {}  # made once: a loader's share is counted when made

    def __repr__(self) -> str:
        return f"RankShares(rank={self.rank} of {self.world}, layers={self.layers})"

    def capture(self, which: str) -> Captured:
        """The activations of `which`, whole (rank 0)."""
        if self.world == 1:
            return self.recorder.capture(which)
        collectives.broadcast(("capture", which))
        share, error = self._own_share(which)
        shares = collectives.gather(share)
        if error is not None:
            raise error
        captured = _assemble(shares, which)
        self._dtypes = {layer: str(values.dtype) for layer, values in captured.activations.items()}
        return captured

    def layer_info(self) -> dict[str, dict[str, Any]]:
        info = self.recorder.layer_info()
        for layer, dtype in self._dtypes.items():  # the dtype of the whole, not of rank 0's share
            if layer in info:
                info[layer]["dtype"] = dtype
        return info

    def lead(self, event: Callable[[], Result]) -> Result:
        if self.world == 1:
            return event()
        try:
            result = event()
        except BaseException as error:
            collectives.broadcast(("failed", f"{type(error).__name__}: {error}"))
            raise
        collectives.broadcast(("done", None))
        return result

    def follow(self) -> None:
        own_error: BaseException | None = None
        while True:
            command, argument = collectives.broadcast(None)
            if command == "done":
                return
            if command == "failed":
                if own_error is not None:
                    raise own_error
                raise LayerlapseError(f"rank 0 stopped recording ({argument}): see rank 0's error")
            share, error = self._own_share(argument)
            own_error = own_error or error
            collectives.gather(share)  # an error too, so that rank 0 stops instead of waiting for this rank

    def fingerprint(self) -> dict[str, str]:
        """A checksum of each input set this rank was given (probe, labels, test probe, test set)."""
        prints = {which: _fingerprint(inputs) for which, inputs in self._inputs().items()}
        if self.recorder.labels is not None:
            prints["probe labels"] = hashlib.sha256(np.ascontiguousarray(self.recorder.labels).tobytes()).hexdigest()
        return prints

    def _own_share(self, which: str) -> tuple[Captured | tuple[str, str] | None, BaseException | None]:
        """This rank's rows of `which` through the model (None when it has none), or its error and the report of
        it; never raised here, since every rank must reach the gather that follows."""
        try:
            if which not in self._shares:
                inputs = self._inputs().get(which)
                if inputs is None:
                    raise ValueError(f"this rank was given no {which.replace('_', ' ')}")
                self._shares[which] = rank_share(inputs, self.rank, self.world)
            share = self._shares[which]
            if share is None:
                return None, None
            activations, probabilities, _ = self.recorder.run_probe(share)
            return Captured(activations, probabilities), None
        except BaseException as error:
            return _report(error, None), error

    def _inputs(self) -> dict[str, ProbeInputs]:
        return {which: inputs for which in INPUT_SETS if (inputs := self.recorder.inputs(which)) is not None}


# ---- the shares of the ranks -----------------------------------------------------------------------------------------
def share_rows(n: int, rank: int, world: int) -> range:
    """The contiguous rows of `n` inputs that rank `rank` of `world` runs (the first ranks take one more)."""
    size, extra = divmod(n, world)
    start = rank * size + min(rank, extra)
    return range(start, start + size + (rank < extra))


def rank_share(inputs: ProbeInputs, rank: int, world: int) -> ProbeInputs | None:
    """This rank's rows of a probe, in the same form; None when it has none (fewer inputs than ranks)."""
    rows = share_rows(len(inputs), rank, world)
    if not rows:
        return None
    part = slice(rows.start, rows.stop)
    if inputs.kind == "tensor":
        data: Any = inputs.data[part]
    elif inputs.kind == "args":
        data = [tensor[part] for tensor in inputs.data]
    elif inputs.kind == "kwargs":
        data = {key: tensor[part] for key, tensor in inputs.data.items()}
    else:
        data = _loader_share(inputs.data, rows, inputs.what)
    return ProbeInputs(data, what=inputs.what, batch_size=inputs.batch_size)


def _loader_share(loader: DataLoader, rows: range, what: str) -> DataLoader:
    """The loader's inputs `rows` (counted in the order it yields them) as a loader of its own."""
    if isinstance(loader.dataset, IterableDataset):
        raise ConfigError(f"the {what} is an IterableDataset, which cannot be split between the ranks of a "
                          "distributed fit: give it as tensors or a map-style Dataset")
    if loader.batch_sampler is not None:
        order = [index for batch in loader.batch_sampler for index in batch]
    else:
        order = list(loader.sampler)
    return DataLoader(Subset(loader.dataset, order[rows.start:rows.stop]),
                      batch_size=loader.batch_size if loader.batch_sampler is not None else None,
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers, pin_memory=loader.pin_memory)


def _assemble(shares: list[Any], which: str) -> Captured:
    """The ranks' shares, in rank order, as one Captured; a rank's error raised here, on rank 0."""
    for rank, share in enumerate(shares):
        if isinstance(share, tuple):
            raise LayerlapseError(f"rank {rank} could not run its share of the {which.replace('_', ' ')} "
                                  f"({share[1]})")
    parts = [share for share in shares if share is not None]
    activations = {layer: np.concatenate([part.activations[layer] for part in parts])
                   for layer in parts[0].activations}
    whole = all(part.probabilities is not None for part in parts)
    probabilities = np.concatenate([part.probabilities for part in parts]) if whole else None
    return Captured(activations, probabilities)


def check_same_probe(fingerprints: list[dict[str, str]]) -> None:
    """Refuse a fit whose ranks were given different probes (their checksums, one dict per rank)."""
    first = fingerprints[0]
    for rank, prints in enumerate(fingerprints[1:], start=1):
        differs = sorted(which for which in {*first, *prints} if first.get(which) != prints.get(which))
        if differs:
            raise ConfigError(f"the probe differs between ranks (rank {rank}'s {', '.join(differs)} is not rank "
                              "0's): give every rank the same probe, e.g. choose it with a fixed seed, not a "
                              "rank-dependent one")


def _fingerprint(inputs: ProbeInputs) -> str:
    digest = hashlib.sha256(f"{inputs.kind}:{len(inputs)}".encode())
    if inputs.kind == "loader":
        for batch in inputs.data:
            _hash_tensors(digest, batch)
    else:
        _hash_tensors(digest, inputs.data)
    return digest.hexdigest()


def _hash_tensors(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _hash_tensors(digest, value[key])
    elif isinstance(value, (tuple, list)):
        for item in value:
            _hash_tensors(digest, item)
    else:
        digest.update(repr(value).encode())


def _report(error: BaseException | None, value: Any) -> Any:
    """What a rank sends the others: its value, or ("error", message) when it failed."""
    return ("error", f"{type(error).__name__}: {error}") if error is not None else value


def _raise_first_failure(reports: list[Any], rank: int, own: BaseException | None) -> None:
    if own is not None:
        raise own
    for other, report in enumerate(reports):
        if isinstance(report, tuple) and report[0] == "error":
            raise LayerlapseError(f"rank {other} could not start recording ({report[1]}): see rank {other}'s error")


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
