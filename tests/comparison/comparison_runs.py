"""Real runs to compare, made for the tests: the reference CNN on the digits at a seed (one probe: the same
--data-seed), and the README's own-loop MLP recorded on a CNN run's probe (another architecture, other widths), each
mapped with PCA. (A module of its own name: conftest.py is not importable by name from a test.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from run_helpers import recorded_and_drawn

from layerlapse.config import RunConfig
from layerlapse.store.run import RunFolder

PROBE = 300
EPOCHS = 2


def cnn_run(folder: Path, seed: int) -> RunFolder:
    out = folder / f"seed{seed}"
    if (out / "manifest.json").is_file():
        return RunFolder.open(out)
    config = RunConfig(dataset="digits", epochs=EPOCHS, layers=("hidden", "flat1"), probe=PROBE, test_probe=0,
                       seed=seed, map_method="pca")
    return recorded_and_drawn(config, out)


def mlp_on_the_probe_of(cnn: RunFolder, out: Path, *, shuffle_probe: bool = False) -> RunFolder:
    """The README's own-loop MLP, trained on the digits and recorded on the CNN run's probe (its images, in its
    order: compared by position), with the PCA map."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from layerlapse import Recorder, load_dataset

    digits = load_dataset("digits")
    rows = cnn.probe_indices()
    if shuffle_probe:
        rows = np.random.default_rng(0).permutation(rows)
    x = torch.tensor(digits.x_train / 255, dtype=torch.float32).reshape(-1, 64)
    y = torch.tensor(digits.y_train)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    config = RunConfig(dataset="digits", loop="own", epochs=None, batch_size=None, learning_rate=None,
                       validation_split=None, map_method="pca", layers=("1", "3"))
    recorder = Recorder(model, ["1", "3"], x[rows], labels=y[rows], out=out, config=config,
                        class_names=cnn.class_names, dataset="digits")
    recorder.start()
    for epoch in range(1, EPOCHS + 1):
        for xb, yb in DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        recorder.epoch_end(epoch)
    return recorder.finish()
