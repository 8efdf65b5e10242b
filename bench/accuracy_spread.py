"""The reference recipe's test accuracy over seeds, on this machine: how much of a single run's figure is the seed.

Trains the reference network exactly as `layerlapse run --dataset mnist --epochs 15` does (the same functions, the
seed setting the split, shuffles, dropout and initial weights), without recording, and prints the test accuracy
after the last epoch for each seed.

    LAYERLAPSE_DATA=../shared/data python bench/accuracy_spread.py --seeds 0,1,2 [--epochs 15] [--variant V]

`--variant` trains otherwise, to see whether a choice moves the accuracy:
  layerlapse     what `layerlapse run` does (the default);
  torch-epsilon  torch's Adam epsilon (1e-8, added after the bias correction) instead of Keras' (1e-7, before);
  plain          none of the speed-ups: NCHW layout, torch's own dropout, unfused Adam (Keras' epsilon), denormal
                 floats kept.
`bench/keras_reference.py` runs the same recipe in Keras itself.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from torch import nn

from layerlapse.reference import train
from layerlapse.config import RunConfig
from layerlapse.reference.data import load_dataset
from layerlapse.reference.models import FastDropout, build_model
from layerlapse.reference.train import evaluate, images_to_tensor, make_optimizer, prepare_model, split_validation, train_epoch
from seed_table import print_seed_table  # beside this script

VARIANTS = ("layerlapse", "torch-epsilon", "plain")


def build(variant: str, image_size: tuple[int, int], n_classes: int, device: torch.device) -> nn.Module:
    model = build_model(image_size, n_classes)
    if variant != "plain":
        return prepare_model(model, device)
    for name, module in model.named_children():
        if isinstance(module, FastDropout):
            setattr(model, name, nn.Dropout(module.p))  # same place in the Sequential, so the same names
    return model.to(device)


def optimizer_for(variant: str, model: nn.Module, learning_rate: float) -> torch.optim.Optimizer:
    if variant == "torch-epsilon":
        return torch.optim.Adam(model.parameters(), lr=learning_rate, fused=True)
    return make_optimizer(model, learning_rate, fused=variant != "plain")


def images(variant: str, x, device: torch.device) -> torch.Tensor:
    tensor = images_to_tensor(x, device)
    return tensor.contiguous() if variant == "plain" else tensor


def test_accuracy(seed: int, epochs: int, variant: str = "layerlapse") -> tuple[float, float, float]:
    """(test accuracy, best validation accuracy, seconds) of one seeded run of the reference recipe."""
    config = RunConfig(dataset="mnist", epochs=epochs, seed=seed)
    dataset = load_dataset("mnist")
    device = torch.device("cpu")
    torch.manual_seed(seed)
    model = build(variant, dataset.x_train.shape[1:], len(dataset.class_names), device)
    optimizer = optimizer_for(variant, model, config.learning_rate)
    x, y = images(variant, dataset.x_train, device), torch.from_numpy(dataset.y_train)
    train_indices, val_indices = split_validation(len(x), config.validation_split, seed)
    if variant == "plain":  # keep denormal floats, as torch does by default
        train._flushing_denormals = contextlib.nullcontext
    started, best = time.perf_counter(), 0.0
    for epoch in range(1, epochs + 1):
        train_epoch(model, optimizer, x, y, train_indices, config.batch_size, seed=seed * 100_003 + epoch,
                    show_progress=False)
        best = max(best, evaluate(model, x[val_indices], y[val_indices])[1])
    _, accuracy, _ = evaluate(model, images(variant, dataset.x_test, device), torch.from_numpy(dataset.y_test))
    return accuracy, best, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--variant", choices=VARIANTS, default="layerlapse")
    args = parser.parse_args()
    print_seed_table(f"torch {torch.__version__} · {args.epochs} epochs · {args.variant}",
                     map(int, args.seeds.split(",")), lambda seed: test_accuracy(seed, args.epochs, args.variant))


if __name__ == "__main__":
    main()
