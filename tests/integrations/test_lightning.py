"""The Lightning callback with real Lightning fits on sklearn's 8x8 digits: one process, two DDP processes on CPU
(gloo), a fit killed with SIGKILL and resumed from its checkpoint, and the one-line errors.

Fits that need their own processes (DDP, SIGKILL) run `script_main` of this module in a subprocess, with a timeout
so that a hang fails the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset, TensorDataset

pl = pytest.importorskip("lightning.pytorch")

from layerlapse.store import layout  # noqa: E402
from layerlapse.capture.probe import ProbeInputs  # noqa: E402
from layerlapse.errors import ConfigError, LayerNotFoundError  # noqa: E402
from layerlapse.integrations import IntegrationError  # noqa: E402
from layerlapse.capture.shares import check_same_probe, rank_share, share_rows  # noqa: E402
from layerlapse.integrations.lightning import LayerlapseCallback, check_version, epoch_metrics  # noqa: E402
from layerlapse.store.run import is_derived, load_run  # noqa: E402

TESTS = Path(__file__).resolve().parent
LAYERS = ["act1", "fc2"]
N_TRAIN, GLOBAL_BATCH, EPOCHS = 1600, 64, 2
SUBPROCESS_TIMEOUT = 240


# ---- the fit every test makes --------------------------------------------------------------------------------------
class DigitsMLP(pl.LightningModule):
    """A small MLP on (N, 8, 8) digit images; plain SGD, so that one process and DDP take the same steps. With
    `sync_dist`, what it logs is averaged over the processes (a collective in every read of the metrics)."""

    def __init__(self, sync_dist: bool = False) -> None:
        super().__init__()
        self.sync_dist = sync_dist
        self.flatten = nn.Flatten()
        self.fc1, self.act1 = nn.Linear(64, 32), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(32, 16), nn.ReLU()
        self.out = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act2(self.fc2(self.act1(self.fc1(self.flatten(x))))))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, sync_dist=self.sync_dist)
        self.log("train_acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True,
                 sync_dist=self.sync_dist)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y), sync_dist=self.sync_dist)
        self.log("val_accuracy", (logits.argmax(1) == y).float().mean(), sync_dist=self.sync_dist)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.images / 16, dtype=torch.float32), torch.tensor(data.target)


def fit_digits(out: str | Path, *, devices: int = 1, root: str | Path, probe_rows: range = range(0, N_TRAIN, 8),
               ckpt_path: str | None = None, kill_after_epoch: int | None = None, max_epochs: int = EPOCHS,
               sync_dist: bool = False, accumulate: int = 1, explicit_labels: bool = False,
               **settings: Any) -> LayerlapseCallback:
    """Train DigitsMLP on 1600 digits (64 per step, split between the processes) with the callback recording a
    200-image probe loader (or the same images as a tensor with `labels=`), 100 test probe images and the 197 test
    digits."""
    pl.seed_everything(0, verbose=False)
    x, y = digits()
    train = TensorDataset(x[:N_TRAIN], y[:N_TRAIN])
    rows = list(probe_rows)
    probe = (x[rows], y[rows]) if explicit_labels else (DataLoader(Subset(train, probe_rows), batch_size=50), None)
    callback = LayerlapseCallback(
        LAYERS, *probe, out=out,
        class_names=[str(digit) for digit in range(10)], dataset="digits", test_probe=x[N_TRAIN:N_TRAIN + 100],
        test_probe_labels=y[N_TRAIN:N_TRAIN + 100], test_set=TensorDataset(x[N_TRAIN:], y[N_TRAIN:]),
        training={"batch_size": GLOBAL_BATCH, "learning_rate": 0.1}, **{"draw": False, **settings})
    callbacks: list[Any] = [callback]
    if kill_after_epoch is not None:
        callbacks.append(KillAfterEpoch(kill_after_epoch))
    callbacks.append(pl.callbacks.ModelCheckpoint(dirpath=Path(root) / "checkpoints", save_last=True))
    # in order, also under DDP (whose own sampler shuffles): ranks 0 and 1 take rows 0, 2, 4, … and 1, 3, 5, …, so
    # a DDP step's 2 x 32 rows are the 1-process step's 64, and the averaged gradient is that step's gradient
    sampler = DistributedSampler(train, devices, int(os.environ.get("LOCAL_RANK", 0)), shuffle=False)
    trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=devices,
                         strategy="ddp" if devices > 1 else "auto", callbacks=callbacks, logger=False,
                         default_root_dir=root, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, use_distributed_sampler=False, accumulate_grad_batches=accumulate)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: 4x faster than two threads on a busy 2-core machine (measured)
    try:
        trainer.fit(DigitsMLP(sync_dist), DataLoader(train, batch_size=GLOBAL_BATCH // devices, sampler=sampler),
                    DataLoader(TensorDataset(x[N_TRAIN:], y[N_TRAIN:]), batch_size=100), ckpt_path=ckpt_path)
    finally:
        torch.set_num_threads(threads)
    return callback


class KillAfterEpoch(pl.Callback):
    """SIGKILL this process at the end of epoch `epoch`, after the layerlapse callback committed its snapshot and
    before the epoch's checkpoint is written (ModelCheckpoint runs last)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.current_epoch + 1 == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def script_main(arguments: dict[str, Any]) -> None:
    """What a subprocess runs: one fit_digits (each DDP rank runs this too)."""
    if arguments.pop("rank_dependent_probe", False):  # the mistake the probe check catches
        rank = int(os.environ.get("LOCAL_RANK", 0))
        arguments["probe_rows"] = range(rank, N_TRAIN, 8)
    fit_digits(**arguments)


def run_script(tmp_path: Path, **arguments: Any) -> subprocess.CompletedProcess[str]:
    """fit_digits(**arguments) in a fresh process (DDP launches its second rank from the same script file)."""
    script = tmp_path / "fit_script.py"
    script.write_text(f"import json, sys\nsys.path.insert(0, {str(TESTS)!r})\n"
                      "from test_lightning import script_main\n"
                      "if __name__ == '__main__':\n    script_main(json.loads(sys.argv[1]))\n")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(script), json.dumps({"root": str(tmp_path), **arguments})]
    # a session of its own, so that a hang ends with every rank (Lightning starts rank 1 from rank 0)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                          env=env, start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"the fit hung: no end after {SUBPROCESS_TIMEOUT} s ({arguments})")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def recorded_files(run_path: Path) -> dict[str, str]:
    """sha256 of each recorded (not drawn) file the run's manifest lists, read from disk."""
    manifest = json.loads((run_path / "manifest.json").read_text())
    return {relpath: hashlib.sha256((run_path / relpath).read_bytes()).hexdigest()
            for relpath in manifest["files"] if not is_derived(relpath)}


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete run recorded by a 1-process fit, drawn: the reference for the DDP fit as well."""
    root = tmp_path_factory.mktemp("lightning")
    fit_digits(root / "run", root=root, draw=True)
    return root / "run"


# ---- one process -----------------------------------------------------------------------------------------------------
def test_fit_records_a_complete_run(one_process_run: Path, main_here) -> None:
    run = load_run(one_process_run)
    assert run.status == "complete" and run.epochs_complete == EPOCHS and run.layers == LAYERS
    assert run.manifest["dataset"]["probe_size"] == 200 and run.manifest["test"]["size"] == 197
    assert run.manifest["dataset"]["source"] == "lightning"  # what recorded it
    assert "snapshots" not in run.manifest  # plain epochs: frames titled "Epoch N"
    for epoch in range(EPOCHS + 1):
        assert run.activations("act1", epoch).shape == (200, 32)
        assert run.activations("fc2", epoch).shape == (200, 16)
        assert run.predictions(epoch).shape == (200, 10)
    x, y = digits()
    assert np.array_equal(run.probe_labels(), y[:N_TRAIN:8].numpy())
    # Lightning's logged names under the names the report plots; the Trainer's settings in the manifest
    assert [sorted(row) for row in run.history] == [["acc", "epoch", "loss", "snapshot", "val_acc", "val_loss"]] * EPOCHS
    training = run.manifest["training"]
    assert training["strategy"] == "SingleDeviceStrategy" and training["processes"] == 1
    assert training["framework"].startswith("lightning ") and training["epochs"] == EPOCHS
    assert (one_process_run / "lapse.gif").is_file() and (one_process_run / "report.html").is_file()
    assert len(list((one_process_run / "frames").rglob("*.png"))) == len(LAYERS) * (EPOCHS + 1)
    for command in (["render", one_process_run], ["report", one_process_run],
                    ["export", "--tensorboard", one_process_run, "--epoch", "1"]):
        result = main_here(*command)
        assert result.returncode == 0, (command, result.stderr)
    assert (one_process_run / "tensorboard" / "epoch_001" / "projector_config.pbtxt").is_file()


def test_every_n_steps_labels_snapshots_by_step(tmp_path: Path) -> None:
    callback = fit_digits(tmp_path / "run", root=tmp_path, every=10)
    run = load_run(tmp_path / "run")
    steps_per_epoch = N_TRAIN // GLOBAL_BATCH
    assert [label["step"] for label in run.manifest["snapshots"]] == list(range(0, EPOCHS * steps_per_epoch + 1, 10))
    assert run.manifest["snapshots"][3] == {"step": 30, "epoch": 1}  # taken in the second epoch: one was complete
    assert run.status == "complete" and callback.run.path == tmp_path / "run"  # draw=False: recorded, not drawn
    assert {row["epoch_end"] for row in run.history if "epoch_end" in row} == {1, 2}
    assert [row["step"] for row in run.history] == sorted(row["step"] for row in run.history)


def test_accumulated_gradients_snapshot_each_due_step_once(tmp_path: Path) -> None:
    # two batches per optimizer step: the batch-end event comes twice with the same global step, which is one step
    fit_digits(tmp_path / "run", root=tmp_path, every=5, accumulate=2)
    run = load_run(tmp_path / "run")
    steps = [label["step"] for label in run.manifest["snapshots"]]
    assert steps == [0, 5, 10, 15, 20, 25, 26]  # 13 optimizer steps an epoch; the last, not due, at the fit's end


# ---- several processes -----------------------------------------------------------------------------------------------
# the module's metrics logged as each rank's own, or synced (Lightning's advice under DDP), which makes every read of
# `trainer.callback_metrics` a collective: once, read on rank 0 alone, it deadlocked the fit after the first epoch
@pytest.mark.parametrize("sync_dist", [False, True], ids=["rank_metrics", "synced_metrics"])
def test_ddp_writes_one_run_that_matches_one_process(one_process_run: Path, tmp_path: Path, sync_dist: bool) -> None:
    # the synced fit's probe is a tensor with labels=: every rank is given them (they once reached rank 0 alone,
    # and the ranks' fingerprints then differed)
    result = run_script(tmp_path, out=str(tmp_path / "run"), devices=2, sync_dist=sync_dist, explicit_labels=sync_dist)
    assert result.returncode == 0, result.stderr[-3000:]
    # neither rank aborted at exit (rank 1's abort leaves rank 0's exit code 0): 7 fits in 20 did with torch's object
    # collectives, see layerlapse.capture.collectives
    assert "terminate called" not in result.stderr, result.stderr[-3000:]
    ddp, single = load_run(tmp_path / "run"), load_run(one_process_run)
    assert ddp.manifest["training"]["processes"] == 2 and ddp.manifest["training"]["strategy"] == "DDPStrategy"
    assert ddp.epochs_complete == EPOCHS and len(ddp.history) == EPOCHS and ddp.manifest["test"]["size"] == 197
    # one writer: nothing in the folder but what its manifest lists (and the manifest, lock and checkpoints)
    on_disk = {path.relative_to(tmp_path / "run").as_posix() for path in (tmp_path / "run").rglob("*")
               if path.is_file()}
    assert on_disk - set(ddp.manifest["files"]) <= {layout.MANIFEST, layout.LOCK}, on_disk
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir()) == ["checkpoints", "run"]
    assert np.array_equal(ddp.probe_labels(), single.probe_labels())
    for relpath in [relpath for relpath in ddp.manifest["files"] if relpath.endswith(".npy")
                    and relpath.startswith(("activations/", "predictions/", "test"))]:
        got, want = ddp.read_array(relpath), single.read_array(relpath)
        assert got.shape == want.shape, relpath
        if "epoch_000" in relpath or relpath.endswith(("labels.npy", "images.npy")):  # the same weights and inputs
            assert np.array_equal(got, want), relpath  # the shares, put together, are the whole probe's rows
        else:  # the same steps, the gradient summed in another order: float16's last bit (measured: 6e-5)
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3, err_msg=relpath)
    if sync_dist:  # averaged over the ranks, an epoch's metrics are the one-process fit's
        assert [sorted(row) for row in ddp.history] == [sorted(row) for row in single.history]
        for got, want in zip(ddp.history, single.history):
            assert got == pytest.approx(want, rel=1e-4), (got, want)


def test_ddp_refuses_a_probe_that_differs_between_ranks(tmp_path: Path) -> None:
    result = run_script(tmp_path, out=str(tmp_path / "run"), devices=2, rank_dependent_probe=True)
    assert result.returncode != 0
    assert "the probe differs between ranks (rank 1's probe, probe labels is not rank 0's)" in result.stderr
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_ddp_stops_every_rank_when_rank_0_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("the user's")  # rank 0 alone finds out, when training starts
    result = run_script(tmp_path, out=str(tmp_path / "run"), devices=2)
    assert result.returncode != 0
    assert "is not empty: pass --resume to continue the run in it, --force to replace it" in result.stderr
    assert "rank 0 stopped recording (RunFolderError: " in result.stderr  # rank 1's error: it did not wait
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["notes.txt"]


def test_check_same_probe_names_what_differs() -> None:
    same = {"probe": "a", "probe labels": "b", "test_set": "c"}
    check_same_probe([same, dict(same)])
    with pytest.raises(ConfigError, match=r"^the probe differs between ranks \(rank 2's test_set is not rank 0's\): "
                                          r"give every rank the same probe, e\.g\. choose it with a fixed seed"):
        check_same_probe([same, same, {**same, "test_set": "other"}])


@pytest.mark.parametrize("form", ["tensor", "args", "kwargs", "loader"])
def test_rank_shares_put_together_are_the_whole_probe_in_order(form: str) -> None:
    x = torch.arange(7 * 3, dtype=torch.float32).reshape(7, 3)
    data = {"tensor": x, "args": (x, x + 1), "kwargs": {"a": x},
            "loader": DataLoader(Subset(TensorDataset(x, torch.arange(7)), [6, 0, 5, 1, 4, 2, 3]), batch_size=2)}
    whole = ProbeInputs(data[form])
    shares = [rank_share(whole, rank, 3) for rank in range(3)]
    assert [len(share) for share in shares] == [3, 2, 2] == [len(share_rows(7, rank, 3)) for rank in range(3)]

    def rows(inputs: ProbeInputs) -> torch.Tensor:
        batches = inputs.batches(torch.device("cpu"))
        return torch.cat([(args or tuple(kwargs.values()))[0] for args, kwargs, _ in batches])
    assert torch.equal(torch.cat([rows(share) for share in shares]), rows(whole))
    assert rank_share(ProbeInputs(x[:1]), 1, 2) is None  # fewer inputs than ranks: nothing to run


# ---- resuming --------------------------------------------------------------------------------------------------------
def test_fit_killed_after_an_epoch_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    killed = run_script(tmp_path, out=str(out), max_epochs=3, kill_after_epoch=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    checkpoints = sorted(path.name for path in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == ["epoch=0-step=25.ckpt", "last.ckpt"]  # so the resumed fit trains epoch 2 again
    before = json.loads((out / "manifest.json").read_text())
    assert before["status"] == "running" and before["epochs_complete"] == 2  # epoch 2 committed, its checkpoint not
    finished = recorded_files(out)
    assert all(finished[relpath] == digest for relpath, digest in before["files"].items() if relpath in finished)

    resumed = run_script(tmp_path, out=str(out), max_epochs=3, ckpt_path=str(tmp_path / "checkpoints" / "last.ckpt"),
                         draw=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = load_run(out)
    assert run.status == "complete" and run.epochs_complete == 3 and [row["epoch"] for row in run.history] == [1, 2, 3]
    after = recorded_files(out)
    assert {relpath: after.get(relpath) for relpath in finished} == finished  # epoch 2 was replayed, not rewritten
    assert (out / "lapse.gif").is_file() and (out / "report.html").is_file()


class FailAfterTraining(pl.Callback):
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        raise RuntimeError("stopped after the last epoch's checkpoint")


def test_fit_resumed_after_its_last_epoch_finishes_the_run(tmp_path: Path) -> None:
    x, y = digits()
    train = DataLoader(TensorDataset(x[:128], y[:128]), batch_size=64)
    for ckpt_path, extra in ((None, [FailAfterTraining()]), (str(tmp_path / "checkpoints" / "last.ckpt"), [])):
        callback = LayerlapseCallback(LAYERS, x[:50], labels=y[:50], out=tmp_path / "run", draw=False,
                                      class_names=list("0123456789"), test_set=(x[1700:], ), test_labels=y[1700:])
        trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=tmp_path, callbacks=[
                                 callback, *extra, pl.callbacks.ModelCheckpoint(tmp_path / "checkpoints",
                                                                                save_last=True)])
        if extra:
            with pytest.raises(RuntimeError, match="stopped after the last epoch's checkpoint"):
                trainer.fit(DigitsMLP(), train)
            assert load_run(tmp_path / "run").status == "failed"
        else:
            trainer.fit(DigitsMLP(), train, ckpt_path=ckpt_path)  # nothing left to train
    run = load_run(tmp_path / "run")
    assert run.epochs_complete == 1 and run.manifest["test"]["size"] == 97 and run.status == "complete"


# ---- errors ----------------------------------------------------------------------------------------------------------
def test_unknown_layer_lists_close_matches(tmp_path: Path) -> None:
    x, y = digits()
    callback = LayerlapseCallback(["fc3"], x[:50], labels=y[:50], out=tmp_path / "run", class_names=list("0123456789"))
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
                         default_root_dir=tmp_path)
    with pytest.raises(LayerNotFoundError, match=r"^unknown layer 'fc3' \(did you mean 'fc\d', 'fc\d'.*\): the model "
                                                 r"has \d+ layers; model\.named_modules\(\) lists them$") as caught:
        trainer.fit(DigitsMLP(), DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32))
    assert len(str(caught.value)) < 200
    assert not (tmp_path / "run").exists()


def test_a_module_without_forward_is_refused(tmp_path: Path) -> None:
    class StepsOnly(DigitsMLP):
        forward = pl.LightningModule.forward

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return nn.functional.cross_entropy(self.out(self.fc2(self.fc1(self.flatten(batch[0])))), batch[1])

    x, y = digits()
    callback = LayerlapseCallback(["fc1"], x[:50], labels=y[:50], out=tmp_path / "run", class_names=list("0123456789"))
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
                         default_root_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"^StepsOnly has no forward\(\): the probe runs through the module as "
                                          r"module\(x\); define forward\(self, x\)"):
        trainer.fit(StepsOnly(), DataLoader(TensorDataset(x[:64], y[:64]), batch_size=32))


def test_bad_schedule_is_refused_before_the_fit(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^every must be 'epoch', 'log' or a whole number"):
        LayerlapseCallback(["fc1"], torch.zeros(4, 8, 8), out=tmp_path, every=0)


def test_unsupported_lightning_version() -> None:
    check_version("2.0.0")
    check_version("2.6.6")
    with pytest.raises(IntegrationError, match=r"^lightning 1\.9\.5 is too old for layerlapse's callback, which "
                                               r"needs 2\.0 or later: pip install -U 'layerlapse\[lightning\]'$"):
        check_version("1.9.5")
    with pytest.raises(IntegrationError, match=r"^pytorch_lightning 1\.6\.0rc1 is too old"):
        check_version("1.6.0rc1", "pytorch_lightning")


def test_epoch_metrics_as_the_report_names_them() -> None:
    logged = {"train_loss": torch.tensor(0.5), "train_loss_step": torch.tensor(0.7), "train_loss_epoch":
              torch.tensor(0.5), "train_acc_epoch": torch.tensor(0.75), "val_accuracy": torch.tensor(0.8),
              "lr": 0.1, "confusion": torch.zeros(3, 3)}
    assert epoch_metrics(logged) == {"loss": 0.5, "acc": 0.75, "val_acc": pytest.approx(0.8), "lr": 0.1}
