"""Snapshots that never sit whole in memory: capture writes a batch at a time into the run folder's .npy, the run
moves the file into place, maps and measures read memory-mapped files a block at a time. Real files, small data; the
block size is lowered so that small arrays take many blocks. Memory itself is measured by bench/memory.py."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from layerlapse.store import blocks
from layerlapse.store.atomic import TEMP_MARK
from layerlapse.capture import Recorder
from layerlapse.capture.session import reopen_for_resume, storage_dtype
from layerlapse.config import RunConfig
from layerlapse.reference.models import ReferenceCNN
from layerlapse.maps.project import usable_rows
from layerlapse.store.blocks import npy_bytes
from layerlapse.store.run import RunFolder
from layerlapse.maps.timeline import LayerTimeline

N_PROBE = 40


@pytest.fixture
def model() -> ReferenceCNN:
    torch.manual_seed(0)
    return ReferenceCNN((8, 8))


@pytest.fixture
def probe() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (N_PROBE, 8, 8), dtype=torch.uint8, generator=generator)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 1,000 bytes: the block-wise paths run over many blocks on arrays of a few kB."""
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 1000)


def new_run(folder: Path, layers: tuple[str, ...] = ("hidden",)) -> RunFolder:
    config = RunConfig(dataset="digits", layers=layers, probe=None, n_neighbors=15)
    return RunFolder.create(folder, config, {"name": "digits"})


def temp_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*") if TEMP_MARK in path.name)


def saved(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# ---- the pieces ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(300, 7), (0, 5), (1, 1), (13, 2, 3), (9,)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int64])
def test_block_wise_npy_bytes_are_np_save_s(shape: tuple[int, ...], dtype: type) -> None:
    values = np.random.default_rng(0).normal(size=shape).astype(np.float32) * 10
    expected = saved(values.astype(dtype))
    assert b"".join(blocks.npy_chunks(values, np.dtype(dtype), block_bytes=100)) == expected


def test_float32_rows_of_a_memory_map_are_np_asarray_s_bit_for_bit(tmp_path: Path) -> None:
    values = np.random.default_rng(1).normal(size=(501, 3, 4)).astype(np.float16)
    values[7, 1, 2], values[400, 0, 0] = np.inf, np.nan
    np.save(tmp_path / "x.npy", values)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    converted = blocks.float32_rows(mapped, block_bytes=64)
    assert type(converted) is np.ndarray and converted.dtype == np.float32 and converted.shape == (501, 12)
    np.testing.assert_array_equal(converted, np.asarray(values, dtype=np.float32).reshape(501, -1))
    np.testing.assert_array_equal(blocks.finite_rows(mapped, block_bytes=64),
                                  np.isfinite(values.reshape(501, -1)).all(axis=1))
    assert blocks.largest_finite_magnitude(mapped, block_bytes=64) == float(np.nanmax(np.abs(
        np.where(np.isfinite(values), values, 0))))


def test_float32_rows_keep_float32_arrays_without_a_copy() -> None:
    values = np.ones((10, 4), dtype=np.float32)
    assert blocks.float32_rows(values) is values


def test_usable_rows_convert_a_memory_map_as_before(tmp_path: Path, small_blocks: None) -> None:
    values = np.random.default_rng(2).normal(size=(200, 30)).astype(np.float16)
    values[3, 3] = np.nan
    np.save(tmp_path / "x.npy", values)
    with pytest.warns(UserWarning, match=r"1 of 200 points have NaN or infinite activations"):
        x, usable, notes = usable_rows(np.load(tmp_path / "x.npy", mmap_mode="r"))
    np.testing.assert_array_equal(x, values.astype(np.float32))
    assert usable.sum() == 199 and not usable[3] and len(notes) == 1


def test_storage_dtype_reads_blocks_and_says_float32_for_any_value_float16_cannot_hold(small_blocks: None) -> None:
    values = np.zeros((400, 8), dtype=np.float32)
    assert storage_dtype(values) == np.float16
    values[390, 5] = 70_000.0  # in the last block
    assert storage_dtype(values) == np.float32
    values[390, 5] = np.inf  # not a value float16 loses: it stays inf either way
    assert storage_dtype(values) == np.float16
    assert storage_dtype(np.zeros((3, 2), dtype=np.int32)) == np.float32


# ---- writing ---------------------------------------------------------------------------------------------------------
def test_a_large_array_is_written_in_blocks_with_np_save_s_bytes_and_checksum(tmp_path: Path,
                                                                             small_blocks: None) -> None:
    run = new_run(tmp_path / "run")
    values = np.random.default_rng(3).normal(size=(500, 6)).astype(np.float32)
    path = run.write_array("activations/hidden/epoch_000.npy", values, np.float16)
    assert path.read_bytes() == npy_bytes(values.astype(np.float16))
    run.record_epoch(0, None)
    RunFolder.open(run.path).verify()  # the listed checksum is the file's
    assert temp_files(run.path) == []


def test_an_array_preallocated_in_the_run_is_moved_into_place_and_becomes_read_only(tmp_path: Path) -> None:
    run = new_run(tmp_path / "run")
    spooled = run.empty_array((100, 7), np.float16)
    spooled[:] = np.arange(700, dtype=np.float16).reshape(100, 7)
    [temp] = temp_files(run.path)
    assert temp.startswith(blocks.SPOOL_PREFIX)
    path = run.write_array("activations/hidden/epoch_000.npy", spooled)
    assert temp_files(run.path) == []  # moved, not copied
    assert path.read_bytes() == npy_bytes(np.arange(700, dtype=np.float16).reshape(100, 7))
    assert not spooled.flags.writeable
    run.record_epoch(0, None)
    RunFolder.open(run.path).verify()


def test_a_preallocated_array_that_is_never_committed_leaves_no_file(tmp_path: Path) -> None:
    run = new_run(tmp_path / "run")
    spooled = run.empty_array((10, 3), np.float32)
    assert len(temp_files(run.path)) == 1
    del spooled
    assert temp_files(run.path) == []


def test_a_preallocated_array_of_another_run_is_copied_not_moved(tmp_path: Path) -> None:
    first, second = new_run(tmp_path / "a"), new_run(tmp_path / "b")
    spooled = first.empty_array((20, 3), np.float16)
    spooled[:] = 1.5
    second.write_array("activations/hidden/epoch_000.npy", spooled)
    assert len(temp_files(first.path)) == 1  # still first's, uncommitted
    np.testing.assert_array_equal(np.load(second.path / "activations/hidden/epoch_000.npy"), spooled)


# ---- capture ---------------------------------------------------------------------------------------------------------
def test_block_wise_capture_stores_the_same_arrays_bit_for_bit(model: ReferenceCNN, probe: torch.Tensor,
                                                               tmp_path: Path) -> None:
    layers = ["hidden", "conv2D_1", "pool2"]
    with Recorder(model, layers, probe, batch_size=7) as recorder:
        in_memory = recorder.take(0)
    run = new_run(tmp_path / "run", tuple(layers))
    with Recorder(model, layers, probe, labels=np.arange(N_PROBE) % 10, run=run, batch_size=7) as recorder:
        written = recorder.snapshot(0)
    for layer in layers:
        assert isinstance(written.activations[layer], np.memmap) and not written.activations[layer].flags.writeable
        np.testing.assert_array_equal(written.activations[layer], in_memory.activations[layer])
        assert (run.path / f"activations/{layer}/epoch_000.npy").read_bytes() == \
            npy_bytes(in_memory.activations[layer])
    assert temp_files(run.path) == []
    RunFolder.open(run.path).verify()


def test_an_overflow_in_a_later_block_makes_the_layer_float32_from_its_first_row(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 64), nn.Linear(64, 2))
    with torch.no_grad():
        model[0].weight.fill_(1e5)
        model[0].bias.zero_()
        model[1].weight.fill_(1e-6)  # back to values float16 holds
    probe = torch.full((12, 4), 1e-3)
    probe[10:] = 1.0  # 4e5 per unit: only the third batch of 4 does not fit float16
    run = new_run(tmp_path / "run", ("0", "1"))
    with Recorder(model, ["0", "1"], probe, labels=np.arange(12) % 2, run=run, batch_size=4) as recorder:
        snapshot = recorder.snapshot(0)
    stored = run.activations("0", 0)
    assert stored.dtype == np.float32 and np.isfinite(stored).all()
    with torch.no_grad():  # the float32 rows of every batch, as the pass computed them
        expected = torch.cat([model[0](probe[start:start + 4]) for start in range(0, 12, 4)]).numpy()
    np.testing.assert_array_equal(stored, expected)
    np.testing.assert_array_equal(snapshot.activations["0"], expected)
    assert run.activations("1", 0).dtype == np.float16  # the other layer stays float16
    assert run.manifest["layer_info"]["0"]["dtype"] == "float32"
    assert temp_files(run.path) == []  # the float16 file of the first try is gone


class StopAt(nn.Module):
    """Passes its input on; raises at its `at`-th call, as a Ctrl-C in the middle of a snapshot would."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return x


def test_a_snapshot_interrupted_mid_write_is_never_listed(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), StopAt(at=9), nn.Linear(32, 2))
    probe = torch.rand(60, 4)
    recorder = Recorder(model, ["0"], probe, labels=np.arange(60) % 2, out=tmp_path / "run",
                        class_names=["a", "b"], batch_size=10, draw=False)
    recorder.start()  # 6 batches: the 9th call is the next snapshot's third batch
    listed = dict(recorder.run.manifest["files"])
    with pytest.raises(KeyboardInterrupt):
        recorder.epoch_end(1)
    recorder.session.abort(interrupted=True)
    recorder.close()
    after = RunFolder.open(tmp_path / "run")
    assert after.epochs_complete == 0 and after.manifest["files"] == listed and after.status == "interrupted"
    assert not (tmp_path / "run/activations/0/epoch_001.npy").exists()


KILLED_MID_SNAPSHOT = """
import os, signal, sys
import numpy as np, torch
from torch import nn
from layerlapse import Recorder

class KillAt(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
    def forward(self, x):
        self.calls += 1
        if self.calls == 11:  # the second snapshot's third batch (of 8): its file is half written
            os.kill(os.getpid(), signal.SIGKILL)
        return x

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 32), KillAt(), nn.Linear(32, 2))
recorder = Recorder(model, ["0"], torch.rand(60, 4), labels=np.arange(60) % 2, out=sys.argv[1],
                    class_names=["a", "b"], batch_size=8, draw=False)
recorder.start()
recorder.epoch_end(1)
"""


def test_a_process_killed_mid_write_leaves_a_temp_file_that_resuming_deletes(tmp_path: Path) -> None:
    run_path = tmp_path / "run"
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_MID_SNAPSHOT), str(run_path)],
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = temp_files(run_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(blocks.SPOOL_PREFIX)
    run = RunFolder.open(run_path)  # what is listed is whole
    assert run.epochs_complete == 0 and not any("epoch_001" in relpath for relpath in run.manifest["files"])
    resumed = reopen_for_resume(run_path)
    resumed.close()
    assert temp_files(run_path) == []


# ---- reading ---------------------------------------------------------------------------------------------------------
def recorded_run(tmp_path: Path, epochs: int = 2) -> RunFolder:
    """A small run of a user's loop: 300 digits, 2 training epochs, two layers recorded, nothing drawn."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = torch.tensor(data.images[:300] / 16, dtype=torch.float32), torch.tensor(data.target[:300])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    recorder = Recorder(model, ["1", "3"], x, labels=y, out=tmp_path / "run", class_names=list("0123456789"),
                        draw=False)
    recorder.start()
    for epoch in range(1, epochs + 1):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        recorder.epoch_end(epoch)
    return recorder.finish()


def test_snapshots_are_read_memory_mapped_and_read_only(tmp_path: Path) -> None:
    run = recorded_run(tmp_path)
    mapped = run.activations("1", 2)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, np.load(run.path / "activations/1/epoch_002.npy"))


@pytest.mark.parametrize("method", ["pca", "aligned"])
def test_maps_and_their_measures_from_memory_maps_are_those_from_arrays_in_memory(tmp_path: Path, method: str,
                                                                                   small_blocks: None) -> None:
    run = recorded_run(tmp_path)
    mapped = LayerTimeline("1", 300, method=method, n_neighbors=15, seed=0)
    in_memory = LayerTimeline("1", 300, method=method, n_neighbors=15, seed=0)
    for epoch in range(3):
        from_map = mapped.next(epoch, run.activations("1", epoch))
        from_memory = in_memory.next(epoch, np.array(np.load(run.path / f"activations/1/epoch_{epoch:03d}.npy")))
        np.testing.assert_array_equal(from_map.xy, from_memory.xy)
        assert {key: value for key, value in from_map.quality.items() if key != "seconds"} == \
            {key: value for key, value in from_memory.quality.items() if key != "seconds"}


def test_layer_measures_from_memory_maps_are_those_from_arrays_in_memory(tmp_path: Path) -> None:
    from layerlapse.measures.layers import measure_run
    from layerlapse.measures.representation import probe_accuracies

    run = recorded_run(tmp_path)
    measured = measure_run(run, sample_size=200)
    from layerlapse.measures.representation import measure_sample

    sample = measure_sample(300, int(run.config.seed), 200)
    labels = run.probe_labels()[sample]
    for epoch in range(3):
        whole = np.load(run.path / f"activations/3/epoch_{epoch:03d}.npy").astype(np.float32)[sample]
        expected = probe_accuracies(whole, labels, int(run.config.seed))
        assert measured["layers"]["3"]["knn_accuracy"][epoch] == expected.get("knn_accuracy")
        assert measured["layers"]["3"]["linear_probe_accuracy"][epoch] == expected.get("linear_probe_accuracy")


def test_the_mapping_worker_reads_memory_maps(tmp_path: Path) -> None:
    from layerlapse.maps.timeline import _activation_path, _mapped

    run = recorded_run(tmp_path, epochs=1)
    read = _mapped(_activation_path(str(run.path), "1", 1))
    assert isinstance(read, np.memmap)
    np.testing.assert_array_equal(read, run.activations("1", 1))
    assert os.path.samefile(read.filename, run.path / "activations/1/epoch_001.npy")
