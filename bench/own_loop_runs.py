"""Record the own-loop runs that bench/map_runs.py maps: the README's plain PyTorch loop (an MLP on scikit-learn's
8×8 digits, a snapshot every epoch) and the same network snapshotted every few optimizer steps (30+ closely spaced
snapshots).

    python bench/own_loop_runs.py --out runs/bench      # writes runs/bench/mlp and runs/bench/steps

The maps are drawn with PCA only to keep the recording quick: the bench maps the stored activations itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from layerlapse import Recorder, RunConfig


def digits() -> tuple[TensorDataset, TensorDataset]:
    data = load_digits()
    x = torch.tensor(data.images / 16, dtype=torch.float32).reshape(-1, 64)
    y = torch.tensor(data.target)
    return TensorDataset(x[:1500], y[:1500]), TensorDataset(x[1500:], y[1500:])


def record(out: Path, *, every: str | int, epochs: int, seed: int) -> None:
    """The README's loop, snapshotted `every` epoch or every N optimizer steps."""
    torch.manual_seed(seed)
    train, test = digits()
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rec = Recorder(model, layers=["1", "3"], probe=DataLoader(train, batch_size=500), out=out, force=True,
                   class_names=[str(d) for d in range(10)], test_probe=test, every=every,
                   config=RunConfig(map_method="pca", seed=seed))
    rec.start()
    step = 0
    for epoch in range(1, epochs + 1):
        for xb, yb in DataLoader(train, batch_size=32, shuffle=True):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            step += 1
            if every != "epoch":
                rec.step_end(step)
        if every == "epoch":
            rec.epoch_end(epoch, metrics={"loss": loss.item()})
    rec.finish()
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    record(args.out / "mlp", every="epoch", epochs=5, seed=args.seed)
    record(args.out / "steps", every=8, epochs=5, seed=args.seed)


if __name__ == "__main__":
    main()
