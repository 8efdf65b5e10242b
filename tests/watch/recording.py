"""A run recorded by a user's own loop (a `Recorder`) in a process of its own, one snapshot at a time as the test
allows: the test touches `<gate>/<epoch>` to let epoch `epoch` train, and `<gate>/finish` to let the run finish.
The watcher and the browser then see each snapshot arrive while the run is still recording."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

from layerlapse import Recorder, RunConfig


def wait_for(gate: Path) -> None:
    while not gate.exists():
        time.sleep(0.05)


def main(out: str, gate_folder: str, epochs: int) -> None:
    gate = Path(gate_folder)
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images / 16, dtype=torch.float32).reshape(-1, 64)
    y = torch.tensor(digits.target)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    recorder = Recorder(model, layers=["1"], probe=x[:200], labels=y[:200], out=out,
                        class_names=[str(d) for d in range(10)], config=RunConfig(map_method="pca"))
    recorder.start()
    for epoch in range(1, epochs + 1):
        wait_for(gate / str(epoch))
        for start in range(200, 1400, 100):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[start:start + 100]), y[start:start + 100]).backward()
            optimizer.step()
        recorder.epoch_end(epoch)
    wait_for(gate / "finish")
    recorder.finish()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
