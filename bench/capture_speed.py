"""Time one snapshot of the probe set, as the training loop takes it: the old capture against the current one.

"old" is the capture as it was before it was tuned (batches of 1000, each batch's arrays concatenated at the end,
the reference network's F.pad copies), copied here; "old@250" is that code in batches of 250, to tell the batch
size's share from the rest; "new" is `Recorder.run_probe`. The variants run interleaved on the same model and
inputs (prepared as train.py prepares them: channels_last), `--repeats` times; the medians are printed, with the
median of the per-repeat ratios to "old", and how far the new arrays are from the old ones.

    LAYERLAPSE_DATA=../shared/data python bench/capture_speed.py [--probe 60000] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from layerlapse.capture import Recorder
from layerlapse.capture.probe import to_float_images
from layerlapse.reference.data import load_dataset
from layerlapse.reference.models import build_model
from layerlapse.capture.modes import evaluating
from layerlapse.reference.train import images_to_tensor, prepare_model


def old_run_probe(recorder: Recorder, inputs: torch.Tensor, batch_size: int = 1000):
    """Recorder.run_probe as it was, word for word but for the batch size argument."""
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in recorder.layers}
    probability_chunks, shapes = [], {}
    try:
        with evaluating(recorder.model), torch.no_grad():
            for start in range(0, len(inputs), batch_size):
                batch = to_float_images(inputs[start:start + batch_size], recorder.device, recorder.channels_last)
                recorder._batch_outputs.clear()
                logits = recorder.model(batch)
                probability_chunks.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
                for name in recorder.layers:
                    output = recorder._batch_outputs[name]
                    shapes[name] = tuple(output.shape[1:])
                    chunks[name].append(output.reshape(len(batch), -1).to(torch.float16).cpu().numpy())
    finally:
        recorder._batch_outputs.clear()
    activations = {name: np.concatenate(parts) for name, parts in chunks.items()}
    return activations, np.concatenate(probability_chunks), shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", type=int, default=60_000, help="probe images (MNIST training images)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--layers", default="hidden", help="comma-separated layers to record")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    dataset = load_dataset("mnist")
    device = torch.device("cpu")
    model = prepare_model(build_model(dataset.x_train.shape[1:], int(dataset.y_train.max()) + 1), device)
    x = images_to_tensor(dataset.x_train[:args.probe], device)
    variants = {
        "old": lambda recorder: old_run_probe(recorder, recorder.probe, 1000),
        "old@250": lambda recorder: old_run_probe(recorder, recorder.probe, 250),
        "new": lambda recorder: recorder.run_probe(recorder.probe),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    results = {}
    print(f"probe {len(x)} images, layers {args.layers}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}")
    with Recorder(model, args.layers.split(","), x, device=device) as recorder:
        recorder.run_probe(recorder.probe[:2000])  # warm-up: oneDNN primitives, allocator
        for _ in range(args.repeats):
            for name, capture in variants.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                results[name] = capture(recorder)
                seconds[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu_started)

    # CPU time is the steadier measure on a shared machine with --threads 1; with more threads OpenMP's spin-waits
    # count in it, so compare wall time
    # count in it, so compare wall time. Other load only ever adds time, so the fastest run is the best estimate of
    # a quiet machine; the ratios are medians of the per-repeat ratios, each repeat running every variant in turn
    print(f"{'variant':<10}{'best s':>8}{'ratio':>7}{'median s':>10}{'ratio':>7}{'cpu s':>8}{'ratio':>7}   wall runs")
    for name, runs in seconds.items():
        ratio = statistics.median(r / o for r, o in zip(runs, seconds["old"]))
        cpu_ratio = statistics.median(r / o for r, o in zip(cpu[name], cpu["old"]))
        print(f"{name:<10}{min(runs):>8.2f}{min(runs) / min(seconds['old']):>7.3f}{statistics.median(runs):>10.2f}"
              f"{ratio:>7.3f}{statistics.median(cpu[name]):>8.2f}{cpu_ratio:>7.3f}   {' '.join(f'{r:.2f}' for r in runs)}")
    (old_acts, old_probs, old_shapes), (acts, probs, shapes) = results["old"], results["new"]
    assert shapes == old_shapes and all(acts[name].dtype == np.float16 for name in acts)
    for name in acts:
        difference = np.abs(acts[name].astype(np.float32) - old_acts[name].astype(np.float32)).max()
        print(f"new vs old {name}: max |difference| {difference:.3g} (float16 activations)")
    print(f"new vs old probabilities: max |difference| {np.abs(probs - old_probs).max():.3g}")


if __name__ == "__main__":
    main()
