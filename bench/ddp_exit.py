"""How often a two-process Lightning DDP fit (CPU, gloo) with the layerlapse callback ends in an abort at exit, with
layerlapse's own collectives (`layerlapse.capture.collectives`) and with torch's object collectives
(`broadcast_object_list`, `gather_object`, `all_gather_object`), which the callback used before. The two are run in
turn, fit by fit, so that both see the same machine.

Each fit: a small MLP on sklearn's 8x8 digits, 2 epochs with validation, the callback recording two layers of a
200-image probe and the 197 test digits (draw=False), and nothing after `trainer.fit`, as in a script that ends
there. A fit counts as aborted when either rank printed "terminate called" (rank 1's abort does not change rank 0's
exit code) or rank 0's exit code is not 0.

    python bench/ddp_exit.py --fits 20
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from integrations import cpu_name  # noqa: E402  (beside this script)
from maps import cpu_flags  # noqa: E402

FIT = r'''
import json, os, sys

import lightning.pytorch as pl
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset, TensorDataset

from layerlapse.capture import collectives
from layerlapse.integrations.lightning import LayerlapseCallback


class Digits(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                                 nn.Linear(16, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def torch_collectives():
    """What the callback used before: torch's object collectives."""
    distributed = torch.distributed

    def broadcast(value):
        box = [value]
        distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(value):
        gathered = [None] * distributed.get_world_size() if distributed.get_rank() == 0 else None
        distributed.gather_object(value, gathered, dst=0)
        return gathered or []

    def all_gather(value):
        gathered = [None] * distributed.get_world_size()
        distributed.all_gather_object(gathered, value)
        return gathered

    collectives.broadcast, collectives.gather, collectives.all_gather = broadcast, gather, all_gather


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    if settings["collectives"] == "torch":
        torch_collectives()
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    digits = load_digits()
    x, y = torch.tensor(digits.images / 16, dtype=torch.float32), torch.tensor(digits.target)
    train = TensorDataset(x[:1600], y[:1600])
    test = TensorDataset(x[1600:], y[1600:])
    callback = LayerlapseCallback(["net.2", "net.4"], DataLoader(Subset(train, range(0, 1600, 8)), batch_size=50),
                                  out=settings["out"], class_names=[str(d) for d in range(10)], test_set=test,
                                  draw=False)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", callbacks=[callback],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False, default_root_dir=settings["out"])
    sampler = DistributedSampler(train, 2, int(os.environ.get("LOCAL_RANK", 0)), shuffle=False)
    trainer.fit(Digits(), DataLoader(train, batch_size=32, sampler=sampler), DataLoader(test, batch_size=100))
'''


def one_fit(folder: Path, collectives: str) -> tuple[bool, float]:
    """(aborted, seconds) of one fit in fresh processes."""
    script = folder / "fit.py"
    script.write_text(FIT)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    result = subprocess.run([sys.executable, str(script), json.dumps({"out": str(folder / "run"),
                                                                       "collectives": collectives})],
                            capture_output=True, text=True, cwd=folder, env=env, timeout=300)
    aborted = result.returncode != 0 or "terminate called" in result.stderr
    if result.returncode != 0 and "terminate called" not in result.stderr:
        print(result.stderr[-2000:], file=sys.stderr)
    return aborted, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fits", type=int, default=20, help="fits with each kind of collectives (default 20)")
    args = parser.parse_args()
    print(f"{datetime.date.today()}, {cpu_name()} ({cpu_flags()}), {os.cpu_count()} cores")
    aborted = {"layerlapse": 0, "torch": 0}
    for fit in range(args.fits):
        for kind in aborted:
            with tempfile.TemporaryDirectory() as folder:
                failed, seconds = one_fit(Path(folder), kind)
            aborted[kind] += failed
            print(f"fit {fit + 1:3d} {kind:10s} {'ABORTED' if failed else 'ok':8s} {seconds:5.1f} s", flush=True)
    for kind, count in aborted.items():
        print(f"{kind} collectives: {count} of {args.fits} fits aborted at exit")


if __name__ == "__main__":
    main()
