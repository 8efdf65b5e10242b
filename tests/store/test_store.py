import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from layerlapse.store.atomic import TEMP_MARK
from layerlapse.config import RunConfig
from layerlapse.errors import RunFolderError
from layerlapse.store.history import curve_axis
from layerlapse.store.layout import LOCK, MANIFEST, epoch_file
from layerlapse.store.manifest import SCHEMA_VERSION, STATUSES
from layerlapse.store.run import RunFolder, is_derived, load_run

CONFIG = RunConfig(dataset="digits", epochs=3, layers=("hidden", "conv2D_1"), probe=None, n_neighbors=15)
DATASET = {"name": "digits", "class_names": [str(digit) for digit in range(10)], "train_size": 1437}
ACTIVATIONS = "activations/hidden/epoch_000.npy"


def new_run(tmp_path: Path, **kwargs: object) -> RunFolder:
    return RunFolder.create(tmp_path / "run", CONFIG, DATASET, **kwargs)


def manifest_on_disk(run: RunFolder) -> dict:
    return json.loads((run.path / MANIFEST).read_text())


def one_line_error(call, match: str) -> RunFolderError:
    with pytest.raises(RunFolderError, match=match) as caught:
        call()
    assert "\n" not in str(caught.value)
    return caught.value


def recorded_run(tmp_path: Path) -> RunFolder:
    """A committed run with one recorded array and one drawing."""
    run = new_run(tmp_path)
    run.write_array(ACTIVATIONS, np.linspace(-1, 1, 64, dtype=np.float16).reshape(8, 8))
    (run.path / "figures").mkdir()
    (run.path / "figures" / "frame_000.png").write_bytes(b"png bytes")
    run.add_file("figures/frame_000.png")
    run.commit()
    return run


def files_under(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


# ---- create ----------------------------------------------------------------------------------------------------------
def test_create_writes_a_running_manifest_with_the_settings(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    manifest = manifest_on_disk(run)
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["status"] == "running" and run.status == "running"
    assert manifest["config"] == CONFIG.to_dict()
    assert manifest["dataset"] == DATASET
    assert manifest["layers"] == ["hidden", "conv2D_1"] == run.layers
    assert manifest["epochs_complete"] == -1 == run.epochs_complete
    assert manifest["files"] == {} and manifest["history"] == [] and manifest["test"] is None
    assert run.config == CONFIG
    assert sorted(path.name for path in run.path.iterdir()) == [LOCK, MANIFEST]  # no temp or write-test files left
    assert repr(run) == (f"RunFolder({str(run.path)!r}, status='running', epochs_complete=-1, "
                         "layers=['hidden', 'conv2D_1'])")


def test_create_makes_missing_parents_and_accepts_an_empty_folder(tmp_path: Path) -> None:
    deep = RunFolder.create(tmp_path / "a" / "b" / "run", CONFIG, DATASET)
    assert (deep.path / MANIFEST).is_file()
    (tmp_path / "empty").mkdir()
    RunFolder.create(tmp_path / "empty", CONFIG, DATASET)
    assert (tmp_path / "empty" / MANIFEST).is_file()


def test_create_refuses_a_non_empty_folder_without_force(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    error = one_line_error(lambda: RunFolder.create(folder, CONFIG, DATASET), match=r"is not empty: pass --resume")
    assert "--force" in str(error) and str(folder) in str(error)
    assert files_under(folder) == {"notes.txt": b"mine"}


def test_force_deletes_nothing_in_a_folder_that_holds_no_run(tmp_path: Path) -> None:
    folder = tmp_path / "thesis"
    (folder / "chapters").mkdir(parents=True)
    (folder / "chapters" / "one.tex").write_text("precious")
    (folder / "notes.txt").write_text("mine")
    before = files_under(folder)
    one_line_error(lambda: RunFolder.create(folder, CONFIG, DATASET, force=True),
                   match=r"holds no layerlapse run, so --force will not delete it: choose another --out")
    assert files_under(folder) == before


def test_force_deletes_nothing_when_manifest_json_is_not_a_run_s(tmp_path: Path) -> None:
    folder = tmp_path / "webapp"
    folder.mkdir()
    (folder / MANIFEST).write_text('{"name": "my web app", "icons": []}')
    (folder / "index.html").write_text("<html></html>")
    before = files_under(folder)
    with pytest.raises(RunFolderError, match="cannot prove is its own run's .*--force will not delete anything in it"):
        RunFolder.create(folder, CONFIG, DATASET, force=True)
    assert files_under(folder) == before


def test_force_replaces_a_run_folder(tmp_path: Path) -> None:
    old = recorded_run(tmp_path)
    old.commit("complete")
    old.close()
    killed = "0123456789abcdef"  # a writer killed with its temp file half written: its token stays in the record
    (old.path / LOCK).write_text(json.dumps({"pid": 0, "command": "layerlapse run", "token": killed}))
    (old.path / "activations" / "hidden" / f".x{TEMP_MARK}{killed}").write_bytes(b"half")
    new = RunFolder.create(old.path, CONFIG, DATASET, force=True)
    assert files_under(new.path).keys() == {LOCK, MANIFEST}
    assert sorted(path.name for path in new.path.iterdir()) == [LOCK, MANIFEST]  # emptied sub-folders are gone too
    assert manifest_on_disk(new)["status"] == "running" and manifest_on_disk(new)["files"] == {}


def test_create_on_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.write_text("not a folder")
    one_line_error(lambda: RunFolder.create(target, CONFIG, DATASET), match=r"run is a file, not a folder: choose")
    one_line_error(lambda: RunFolder.create(target, CONFIG, DATASET, force=True), match=r"is a file, not a folder")
    assert target.read_text() == "not a folder"


def test_create_where_nothing_can_be_written_says_so(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    one_line_error(lambda: RunFolder.create(tmp_path / "afile" / "run", CONFIG, DATASET),
                   match=r"^cannot write to .*afile/run \(.+\): choose another --out or fix its permissions$")


def test_create_in_a_read_only_folder_says_so(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user (root) can write to a read-only folder")
        one_line_error(lambda: RunFolder.create(locked / "run", CONFIG, DATASET), match=r"^cannot write to ")
    finally:
        locked.chmod(0o700)


# ---- writing and reading ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("array", [
    np.array([[0.5, -1.25], [65504.0, 1e-4]], dtype=np.float16),
    np.arange(-5, 7, dtype=np.int64).reshape(3, 4) * 10**12,
    np.arange(0, 256, 17, dtype=np.uint8).reshape(1, -1, 1),
], ids=["float16", "int64", "uint8"])
def test_arrays_round_trip_with_their_checksum_listed(tmp_path: Path, array: np.ndarray) -> None:
    run = new_run(tmp_path)
    path = run.write_array("probe/values.npy", array)
    assert path == run.path / "probe" / "values.npy"
    assert run.manifest["files"]["probe/values.npy"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "probe/values.npy" not in manifest_on_disk(run)["files"]  # listed on disk only when committed
    run.commit()
    loaded = RunFolder.open(run.path).read_array("probe/values.npy")
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)


def test_a_non_contiguous_array_is_written_whole(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    array = np.arange(24, dtype=np.int64).reshape(4, 6)[:, ::2]
    run.write_array("probe/strided.npy", array)
    np.testing.assert_array_equal(run.read_array("probe/strided.npy"), array)


def test_activations_and_predictions_are_read_by_layer_and_epoch(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    assert epoch_file(7) == "epoch_007.npy" and epoch_file(12, ".pt") == "epoch_012.pt"
    run.write_array(f"activations/conv2D_1/{epoch_file(2)}", np.full((3, 4), 2, dtype=np.float16))
    run.write_array(f"predictions/{epoch_file(2)}", np.full((3, 10), 0.1, dtype=np.float32))
    assert run.activations("conv2D_1", 2).shape == (3, 4)
    assert run.predictions(2).dtype == np.float32


def test_write_json_refuses_nan(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    run.write_json("maps/hidden/metrics.json", {"trustworthiness": 0.9})
    assert json.loads((run.path / "maps/hidden/metrics.json").read_text()) == {"trustworthiness": 0.9}
    with pytest.raises(ValueError):
        run.write_json("maps/hidden/bad.json", {"value": float("nan")})


@pytest.mark.parametrize("status", STATUSES)
def test_commit_records_each_status(tmp_path: Path, status: str) -> None:
    run = new_run(tmp_path)
    run.commit(status)
    assert manifest_on_disk(run)["status"] == status
    assert RunFolder.open(run.path).status == status
    run.commit()  # no status keeps the last one
    assert manifest_on_disk(run)["status"] == status


def test_commit_refuses_an_unknown_status(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    with pytest.raises(ValueError, match=r"status must be one of .*got 'done'"):
        run.commit("done")
    assert manifest_on_disk(run)["status"] == "running"


def test_record_epoch_keeps_the_history_of_earlier_epochs_only(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    run.record_epoch(0, None)
    rows = [{"snapshot": epoch, "epoch": epoch, "loss": 1.0 / epoch} for epoch in (1, 2, 3)]
    for epoch, row in enumerate(rows, start=1):
        run.record_epoch(epoch, row)
    assert manifest_on_disk(run)["epochs_complete"] == 3 and run.history == rows
    run.record_epoch(2, {"snapshot": 2, "epoch": 2, "loss": 0.25})  # epoch 2 recorded again, as after a resume
    assert run.history == [rows[0], {"snapshot": 2, "epoch": 2, "loss": 0.25}]
    lines = (run.path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == run.history


def test_an_older_runs_history_is_read_with_its_snapshots_labels(tmp_path: Path) -> None:
    # before 2026-12-06 a row stored its snapshot's number under "epoch", whatever the snapshot's epoch and step
    run = new_run(tmp_path)
    run.manifest["snapshots"] = [{"step": 0, "epoch": 0}, {"step": 100, "epoch": 1}, {"step": 200, "epoch": 3}]
    run.manifest["epochs_complete"] = 2
    run.manifest["history"] = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "epoch_end": 3}]
    assert run.history == [{"snapshot": 1, "step": 100, "epoch": 1, "loss": 0.5},
                           {"snapshot": 2, "step": 200, "epoch": 3, "loss": 0.25, "epoch_end": 3}]
    assert curve_axis(run.manifest, run.history) == ([100, 200], [0, 100, 200], "optimizer step")


def test_forget_unlists_a_file(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    run.write_bytes("checkpoints/epoch_000.pt", b"state")
    run.forget("checkpoints/epoch_000.pt")
    run.forget("checkpoints/never.pt")
    assert not run.has("checkpoints/epoch_000.pt")


# ---- opening ---------------------------------------------------------------------------------------------------------
def test_open_reads_back_a_committed_run(tmp_path: Path) -> None:
    run = recorded_run(tmp_path)
    opened = load_run(run.path)
    assert opened.manifest["files"] == run.manifest["files"]
    assert opened.config == CONFIG and opened.status == "running"
    np.testing.assert_array_equal(opened.activations("hidden", 0), run.read_array(ACTIVATIONS))


def test_open_without_a_manifest(tmp_path: Path) -> None:
    one_line_error(lambda: RunFolder.open(tmp_path), match=rf"holds no {MANIFEST}: give the folder of a layerlapse run")
    one_line_error(lambda: RunFolder.open(tmp_path / "absent"), match="holds no manifest.json")


@pytest.mark.parametrize("content", [b"{\"schema_version\": 1, ", b"\xff\xfe\x00garbage"], ids=["cut", "binary"])
def test_open_with_a_manifest_that_is_not_json(tmp_path: Path, content: bytes) -> None:
    run = new_run(tmp_path)
    (run.path / MANIFEST).write_bytes(content)
    one_line_error(lambda: RunFolder.open(run.path),
                   match=r"manifest.json is damaged \(.*\): restore it, or record the run again with --force")


@pytest.mark.parametrize(("manifest", "found"), [({"schema_version": 2}, "2"), ({}, "None"), ([1, 2], "None")])
def test_open_with_another_schema_version(tmp_path: Path, manifest: object, found: str) -> None:
    run = new_run(tmp_path)
    (run.path / MANIFEST).write_text(json.dumps(manifest))
    one_line_error(lambda: RunFolder.open(run.path),
                   match=rf"has schema version {found}, this layerlapse reads 1: record the run again")


def test_open_with_a_manifest_that_lacks_its_keys(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    (run.path / MANIFEST).write_text(json.dumps({"schema_version": SCHEMA_VERSION}))
    with pytest.raises(RunFolderError, match="manifest.json"):
        RunFolder.open(run.path)


def test_open_finds_a_truncated_array(tmp_path: Path) -> None:
    run = recorded_run(tmp_path)
    file = run.path / ACTIVATIONS
    file.write_bytes(file.read_bytes()[:-10])
    one_line_error(lambda: RunFolder.open(run.path),
                   match=rf"is damaged: {ACTIVATIONS} does not match its checksum \(truncated or altered\)")
    # without the check, reading it is still an error a user can act on, not numpy's
    unverified = RunFolder.open(run.path, verify=False)
    one_line_error(lambda: unverified.read_array(ACTIVATIONS), match=rf"is damaged: {ACTIVATIONS} cannot be read")


def test_open_finds_an_altered_byte(tmp_path: Path) -> None:
    run = recorded_run(tmp_path)
    file = run.path / ACTIVATIONS
    data = bytearray(file.read_bytes())
    data[-1] ^= 0x01  # the same size, one bit of the last value changed
    file.write_bytes(bytes(data))
    one_line_error(lambda: RunFolder.open(run.path), match=rf"damaged: {ACTIVATIONS} does not match its checksum")
    assert RunFolder.open(run.path, verify=False).read_array(ACTIVATIONS).shape == (8, 8)  # still loads: only sha sees


def test_open_finds_a_missing_array(tmp_path: Path) -> None:
    run = recorded_run(tmp_path)
    (run.path / ACTIVATIONS).unlink()
    one_line_error(lambda: RunFolder.open(run.path), match=rf"damaged: {ACTIVATIONS} is missing; restore it")


def test_altered_drawings_are_not_damage(tmp_path: Path) -> None:
    run = recorded_run(tmp_path)
    run.write_bytes("history.jsonl", b"{}\n")
    run.write_bytes("lapse.gif", b"GIF89a")
    run.commit()
    (run.path / "figures" / "frame_000.png").write_bytes(b"redrawn, longer than before")
    (run.path / "history.jsonl").write_bytes(b"")
    (run.path / "lapse.gif").unlink()
    RunFolder.open(run.path)
    assert is_derived("figures/frame_000.png") and is_derived("lapse.mp4") and not is_derived(ACTIVATIONS)


def test_the_stored_settings_must_be_usable(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    run.manifest["config"] = {**CONFIG.to_dict(), "epochs": 0}
    one_line_error(lambda: run.config, match=r"holds settings this layerlapse cannot use \(epochs must be")
    run.manifest["config"] = {**CONFIG.to_dict(), "colour": "red"}
    one_line_error(lambda: run.config, match=r"cannot use \(unknown settings \['colour'\]")


# ---- reading what is not there, or is not plain data -----------------------------------------------------------------
def test_read_array_of_an_unlisted_file(tmp_path: Path) -> None:
    run = recorded_run(tmp_path)
    (run.path / "predictions").mkdir()
    np.save(run.path / "predictions" / "epoch_000.npy", np.zeros(3))  # on disk, but never listed
    one_line_error(lambda: run.read_array("predictions/epoch_000.npy"),
                   match=r"has no predictions/epoch_000.npy: the run did not record it")


def test_read_array_never_unpickles(tmp_path: Path) -> None:
    run = new_run(tmp_path)
    relpath = "probe/objects.npy"
    (run.path / "probe").mkdir()
    np.save(run.path / relpath, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    run.add_file(relpath)
    run.commit()
    opened = RunFolder.open(run.path)  # the checksum matches: it was listed as it is
    one_line_error(lambda: opened.read_array(relpath), match=rf"damaged: {relpath} cannot be read \(.*pickle")


# ---- resuming --------------------------------------------------------------------------------------------------------
def test_discard_uncommitted_keeps_only_what_the_manifest_lists(tmp_path: Path) -> None:
    run = recorded_run(tmp_path)
    uncommitted = [run.path / "activations" / "hidden" / "epoch_001.npy",
                   run.path / "predictions" / "epoch_001.npy",
                   run.path / "checkpoints" / "epoch_001.pt"]
    for file in uncommitted:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"written after the last commit")
    run.close()
    killed = "0123456789abcdef"  # the writer that left them was killed: its token stays in the lock's record
    (run.path / LOCK).write_text(json.dumps({"pid": 0, "command": "layerlapse run", "token": killed}))
    temp_files = [run.path / f".{MANIFEST}{TEMP_MARK}{killed}",
                  run.path / "figures" / f".frame_001.png{TEMP_MARK}{killed}"]
    for file in temp_files:
        file.write_bytes(b"half")
    drawing = run.path / "figures" / "frame_001.png"  # unlisted, but not recorded data
    drawing.write_bytes(b"png")
    lookalike = run.path / "figures" / f".sketch.png{TEMP_MARK}99"  # a user's, named as temp files once were
    lookalike.write_bytes(b"mine")
    opened = RunFolder.open(run.path)
    opened.discard_uncommitted()
    assert not any(file.exists() for file in uncommitted + temp_files)
    assert (run.path / ACTIVATIONS).is_file() and drawing.is_file() and (run.path / MANIFEST).is_file()
    assert lookalike.read_bytes() == b"mine"
    assert (run.path / "figures" / "frame_000.png").is_file()
    RunFolder.open(run.path)


def test_an_interrupt_landing_after_the_manifest_is_renamed_keeps_the_committed_epoch(tmp_path: Path) -> None:
    """SIGTERM can arrive inside commit after the new manifest is in place but before the run noted it: the
    interrupted mark must build on the manifest on disk, not roll the committed epoch back."""
    run = new_run(tmp_path)
    run.write_probe(np.arange(10) % 2, None)
    run.record_epoch(0, None)
    noted_before = run._manifest_text
    run.record_epoch(1, {"epoch": 1, "loss": 0.5})
    run._manifest_text = noted_before  # as if the signal landed between the rename and the note
    with pytest.raises(KeyboardInterrupt), run.noting_failure():
        raise KeyboardInterrupt
    on_disk = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert on_disk["status"] == "interrupted" and on_disk["epochs_complete"] == 1
    run.close()
