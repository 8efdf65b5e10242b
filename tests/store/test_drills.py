"""Drills: what a hostile or unlucky user does to copies of a real run folder, and what layerlapse must do.

Each drill works on a copy of one real `digits` run, beside a victim folder of files that belong to nobody's run.
It asserts the exit code and the one line the user reads, that no file outside the run folder changed (the victim's
hashes before and after), and that nothing committed was lost. Read-only folders and full disks are real: a
read-only bind mount and a small tmpfs, made in a private mount namespace (`unshare -m`) so nothing outlives the
drill; without that permission those drills skip and say why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error
from typer.testing import CliRunner

from layerlapse.cli import app

RUN_ARGS = ["run", "--dataset", "digits", "--epochs", "2", "--probe", "all", "--test-probe", "100", "--quiet"]


# ---- the run, the victim, and what must not change -----------------------------------------------------------------


@pytest.fixture(scope="module")
def drill_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drill-source") / "run"
    result = CliRunner().invoke(app, [*RUN_ARGS, "--out", str(out)])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return out


class Area:
    """A copy of the run and a victim folder beside it, with the victim's and the run's files as they were."""

    def __init__(self, source: Path, root: Path) -> None:
        self.run = root / "run"
        self.outside = root / "outside"
        shutil.copytree(source, self.run)
        (self.outside / "sub").mkdir(parents=True)
        (self.outside / "victim.txt").write_text("not layerlapse's")
        (self.outside / "frames.png").write_bytes(b"someone's picture")
        (self.outside / "sub" / "data.csv").write_text("a,b\n1,2\n")
        self.victim_before = hashes(self.outside)

    def manifest(self) -> dict:
        return json.loads((self.run / "manifest.json").read_text())

    def write_manifest(self, manifest: dict) -> None:
        (self.run / "manifest.json").write_text(json.dumps(manifest, indent=2))

    def relist(self, relpath: str) -> None:
        """Rewrite the checksum of `relpath` as a careful attacker would, so only deeper checks can catch it."""
        manifest = self.manifest()
        manifest["files"][relpath] = hashlib.sha256((self.run / relpath).read_bytes()).hexdigest()
        self.write_manifest(manifest)

    def assert_outside_untouched(self) -> None:
        assert hashes(self.outside) == self.victim_before, "a file outside the run folder changed"


def hashes(folder: Path) -> dict[str, str]:
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file() and not path.is_symlink()}


def recorded(run: Path) -> dict[str, str]:
    """The hashes of the run's files that hold data (not the drawings, the manifest or the lock)."""
    return {relpath: digest for relpath, digest in hashes(run).items()
            if relpath.startswith(("probe/", "activations/", "predictions/", "checkpoints/", "test/", "maps/"))}


@pytest.fixture
def area(drill_source: Path, tmp_path: Path):
    made = Area(drill_source, tmp_path)
    yield made
    made.assert_outside_untouched()


def layerlapse(*args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "layerlapse", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


# ---- paths from the manifest ---------------------------------------------------------------------------------------


def test_a_listed_path_that_climbs_out_is_refused_and_the_file_outside_survives(area: Area, main_here) -> None:
    manifest = area.manifest()
    manifest["files"]["maps/../../outside/victim.txt"] = hashlib.sha256(b"not layerlapse's").hexdigest()
    area.write_manifest(manifest)
    before = recorded(area.run)
    for command in (["render", area.run, "--map", "pca"], ["report", area.run], ["run", *RUN_ARGS[1:], "--out",
                                                                                  area.run, "--force"]):
        assert_error(main_here(*command), r"lists a file outside the run's own layout: 'maps/\.\./\.\./outside/"
                                          r"victim\.txt' is not a plain path inside the run folder")
    assert recorded(area.run) == before


@pytest.mark.parametrize("layer", ["../../x7g", "/tmp/x7g", ".hidden", "a/b"])
def test_a_layer_name_that_is_a_path_is_refused(area: Area, main_here, layer: str) -> None:
    manifest = area.manifest()
    manifest["layers"] = [layer]
    manifest["config"]["layers"] = [layer]
    area.write_manifest(manifest)
    for command in (["render", area.run], ["report", area.run], ["export", area.run, "--epoch", "1",
                                                                 "--tensorboard"]):
        assert_error(main_here(*command), r"manifest\.json is damaged: layers\[0\] must be a plain layer name, not "
                                          r"a path")
    assert not list(area.run.parent.glob("x7g*")) and not Path("/tmp/x7g").exists()


@pytest.mark.parametrize(("entry", "value", "expected"), [
    ("epochs_complete", "three", "epochs_complete must be a whole number of at least -1, got 'three'"),
    ("layers", 5, "layers must be a list of distinct layer names, got 5"),
    ("status", ["complete"], "status must be one of running, interrupted, failed, complete"),
    ("history", [{"epoch": "one"}], r"history\[0\] must be a row of named numbers"),
    ("test", {"accuracy": "high"}, "test must be null or a table of loss, accuracy and size"),
    ("dataset", {"class_names": [1, 2]}, "dataset.class_names must be a list of class names"),
])
def test_manifest_fields_of_the_wrong_type_are_one_line(area: Area, main_here, entry: str, value: object,
                                                       expected: str) -> None:
    manifest = area.manifest()
    manifest[entry] = value
    area.write_manifest(manifest)
    for command in (["render", area.run], ["report", area.run]):
        assert_error(main_here(*command), rf"manifest\.json is damaged: {expected}")


def test_a_manifest_of_ten_megabytes_of_nesting_is_one_line(area: Area, main_here) -> None:
    (area.run / "manifest.json").write_text("[" * 5_000_000 + "]" * 5_000_000)
    assert_error(main_here("render", area.run), r"manifest\.json is damaged \(nested too deeply\)")


# ---- --force -------------------------------------------------------------------------------------------------------


def test_force_leaves_a_folder_with_another_tool_s_manifest_alone(tmp_path: Path, main_here) -> None:
    folder = tmp_path / "theirs"
    (folder / "sub").mkdir(parents=True)
    (folder / "precious.txt").write_text("keep")
    (folder / "sub" / "data.csv").write_text("1,2")
    (folder / "manifest.json").write_text(json.dumps({
        "schema_version": 1, "files": {"precious.txt": "0" * 64, "sub/data.csv": "1" * 64}}))
    before = hashes(folder)
    result = main_here(*RUN_ARGS, "--out", folder, "--force")
    assert_error(result, r"holds a manifest\.json that layerlapse cannot prove is its own run's .*, so --force will "
                         r"not delete anything in it: choose another --out")
    assert hashes(folder) == before


def test_force_replaces_a_run_but_keeps_the_files_it_did_not_list(area: Area, main_here) -> None:
    (area.run / "notes.txt").write_text("mine")
    (area.run / "frames" / "keep.png").write_bytes(b"mine too")
    result = main_here(*RUN_ARGS, "--epochs", "1", "--out", area.run, "--force")
    assert result.returncode == 0, result.stderr
    assert (area.run / "notes.txt").read_text() == "mine"
    assert (area.run / "frames" / "keep.png").read_bytes() == b"mine too"
    assert area.manifest()["epochs_complete"] == 1 and not (area.run / "activations/hidden/epoch_002.npy").exists()


def test_force_deletes_only_listed_files_it_can_prove_are_its_own(area: Area, main_here) -> None:
    """A manifest with the format marker is no proof: a listed file whose content does not match its checksum, or
    whose name is none the run writes (a crafted manifest listing bin/sh with its right checksum), stays."""
    theirs = {"bin/sh": b"#!a shell of the user's", "etc/passwd": b"root:x:0:0::/root:/bin/sh\n",
              "notes/mine.txt": b"listed with its right checksum, under a name layerlapse never writes"}
    manifest = area.manifest()
    for relpath, data in theirs.items():
        (area.run / relpath).parent.mkdir(exist_ok=True)
        (area.run / relpath).write_bytes(data)
    manifest["files"]["bin/sh"] = "0" * 64
    manifest["files"]["etc/passwd"] = hashlib.sha256(b"another file").hexdigest()
    manifest["files"]["notes/mine.txt"] = hashlib.sha256(theirs["notes/mine.txt"]).hexdigest()
    area.write_manifest(manifest)
    result = main_here(*RUN_ARGS, "--epochs", "1", "--out", area.run, "--force")
    assert result.returncode == 0, result.stderr
    assert {relpath: (area.run / relpath).read_bytes() for relpath in theirs} == theirs
    assert area.manifest()["epochs_complete"] == 1 and "bin/sh" not in area.manifest()["files"]


# ---- temporaries: only what a killed writer of this run provably made is removed ----------------------------------

LOOKALIKES = {  # a user's own files, named as layerlapse's temporaries are or were
    ".notes.txt.tmp-1234": b"a user's notes", "frames/.sketch.png.tmp-42": b"a sketch",
    "activations/hidden/.epoch_009.npy.tmp-77": b"an array of the user's",
    "figures/.chart.png.tmp-0123456789abcdef": b"a token no writer of this run had",
    "maps/.new-ideas/plan.txt": b"plans", "maps/.old-hidden/keep.txt": b"an old map the user keeps",
    "maps/.old-0123456789abcdef-hidden/keep.txt": b"the same, under a token no writer had",
}


def plant_lookalikes(run: Path) -> None:
    for relpath, data in LOOKALIKES.items():
        (run / relpath).parent.mkdir(parents=True, exist_ok=True)
        (run / relpath).write_bytes(data)


def assert_lookalikes_kept(run: Path) -> None:
    kept = {relpath: (run / relpath).read_bytes() for relpath in LOOKALIKES if (run / relpath).is_file()}
    assert kept == LOOKALIKES


@pytest.mark.parametrize("command", ["report", "resume", "force"])
def test_files_that_only_look_like_temporaries_are_kept(area: Area, main_here, command: str) -> None:
    plant_lookalikes(area.run)
    interrupt(area)
    args = {"report": ["report", area.run], "resume": [*RUN_ARGS, "--out", area.run, "--resume"],
            "force": [*RUN_ARGS, "--epochs", "1", "--out", area.run, "--force"]}[command]
    result = main_here(*args)
    assert result.returncode == 0, result.stderr
    assert_lookalikes_kept(area.run)


KILLED_WRITER = """
import os, signal, sys
from layerlapse.store.atomic import atomic_output
from layerlapse.store.run import RunFolder
run = RunFolder.open_for_writing(sys.argv[1])
(run.stage_maps("hidden") / "epoch_000.npy").write_bytes(b"a staged map")
spooled = run.empty_array((10, 3), "float16")
with atomic_output(run.local("frames/epoch_000.png")) as temporary:
    temporary.write_bytes(b"half a frame")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_what_a_killed_writer_left_is_removed_by_the_next_resume_and_lookalikes_are_kept(area: Area,
                                                                                           main_here) -> None:
    plant_lookalikes(area.run)
    interrupt(area)
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(area.run)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = sorted(hidden_but_lookalikes(area.run))
    assert len(left) == 3, left  # the frame's temp file, the spooled array, the staged maps
    assert left[0].startswith(".capture-") and left[1].startswith("frames/.epoch_000.png.tmp-"), left
    assert left[2].startswith("maps/.new-") and left[2].endswith("-hidden"), left
    result = main_here(*RUN_ARGS, "--out", area.run, "--resume")
    assert result.returncode == 0, result.stderr
    assert_lookalikes_kept(area.run)
    assert hidden_but_lookalikes(area.run) == set()


def hidden_but_lookalikes(run: Path) -> set[str]:
    """Every file or folder of `run` with a hidden name but the lock and the user's lookalikes (and their folders)."""
    hidden = {path.relative_to(run).as_posix() for path in run.rglob(".*")}
    return {relpath for relpath in hidden - {".layerlapse-lock"}
            if not any(lookalike == relpath or lookalike.startswith(relpath + "/") for lookalike in LOOKALIKES)}


# ---- links out of the run ------------------------------------------------------------------------------------------


def interrupt(area: Area, *, epochs: int = 3) -> None:
    """The run as if stopped after its last epoch of a longer run: --resume trains one more."""
    manifest = area.manifest()
    manifest["status"], manifest["config"]["epochs"] = "interrupted", epochs
    area.write_manifest(manifest)


def link_out(area: Area, folder: str) -> Path:
    """Replace the run's `folder` by a link to a folder outside holding a copy of it (and the victim's files)."""
    target = area.outside / "linked"
    shutil.copytree(area.run / folder, target)
    (target / "users-own.txt").write_text("on another disk")
    area.victim_before = hashes(area.outside)
    shutil.rmtree(area.run / folder)
    (area.run / folder).symlink_to(target, target_is_directory=True)
    return target


def test_resume_refuses_a_recorded_folder_that_links_out(area: Area, main_here) -> None:
    link_out(area, "test")
    interrupt(area)
    assert_error(main_here(*RUN_ARGS, "--out", area.run, "--resume"),
                 r"run folder .*: test is a symbolic link, and layerlapse never follows a link out of a run folder: "
                 r"replace it with a real folder or file")


def test_render_refuses_a_frames_folder_that_links_out(area: Area, main_here) -> None:
    link_out(area, "frames")
    before = recorded(area.run)
    assert_error(main_here("render", area.run), r"frames is a symbolic link, and layerlapse never follows a link")
    assert recorded(area.run) == before


def test_a_listed_file_that_is_a_link_is_never_read_through(area: Area, main_here) -> None:
    (area.run / "probe" / "labels.npy").unlink()
    shutil.copy(area.outside / "victim.txt", area.outside / "labels.npy")
    area.victim_before = hashes(area.outside)
    (area.run / "probe" / "labels.npy").symlink_to(area.outside / "labels.npy")
    assert_error(main_here("render", area.run), r"probe/labels\.npy is a symbolic link")


# ---- damaged arrays: everything is checked before any map is replaced ----------------------------------------------


def map_files(run: Path) -> dict[str, str]:
    return {relpath: digest for relpath, digest in hashes(run).items() if relpath.startswith("maps/")}


def npy_with_header(path: Path, shape: tuple[int, ...]) -> bytes:
    """The bytes of the .npy file at `path` with a header that claims `shape` (the data left as it is)."""
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    header = data[10:header_end].replace(str(np.load(path).shape).encode(), str(shape).encode())
    return data[:8] + len(header).to_bytes(2, "little") + header + data[header_end:]


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped header", "huge claimed header"])
def test_render_with_another_method_leaves_every_map_as_it_was_when_an_input_is_damaged(
        area: Area, main_here, damage: str) -> None:
    relpath = "activations/hidden/epoch_002.npy"
    path = area.run / relpath
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:len(data) // 2])
        expected = r"header promises [\d,]+ bytes of \(\d+, 512\) float16 but the file holds [\d,]+"
    elif damage == "bit-flipped header":
        flipped = bytearray(data)
        flipped[data.index(b"512")] ^= 0x04  # '5' -> '1': 112 columns
        path.write_bytes(bytes(flipped))
        expected = r"header promises .* but the file holds"
    else:
        path.write_bytes(npy_with_header(path, (10**12, 512)))
        expected = r"header promises 1,024,000,000,000,000 bytes"
    area.relist(relpath)
    maps_before = map_files(area.run)
    assert_error(main_here("render", area.run, "--map", "pca"), rf"{re.escape(relpath)} cannot be read \(its {expected}")
    assert map_files(area.run) == maps_before
    assert area.manifest()["maps"]["method"] == "aligned"
    assert not [path for path in (area.run / "maps").iterdir() if path.name.startswith(".")]


def test_a_redraw_swaps_every_map_in_and_leaves_no_stage_behind(area: Area, main_here) -> None:
    """The maps are replaced whole; the user's own files beside them stay (a redraw once deleted them with the old
    maps)."""
    (area.run / "maps/hidden/notes.txt").write_text("the user's")
    (area.run / "maps/hidden/mine").mkdir()
    (area.run / "maps/hidden/mine/plot.png").write_bytes(b"the user's plot")
    result = main_here("render", area.run, "--map", "pca", "-q")
    assert result.returncode == 0, result.stderr
    assert area.manifest()["maps"]["method"] == "pca"
    assert (area.run / "maps/hidden/notes.txt").read_text() == "the user's"
    assert (area.run / "maps/hidden/mine/plot.png").read_bytes() == b"the user's plot"
    listed = {relpath for relpath in area.manifest()["files"] if relpath.startswith("maps/")}
    assert listed == set(map_files(area.run)) - {"maps/hidden/notes.txt", "maps/hidden/mine/plot.png"}
    assert json.loads((area.run / "maps/hidden/quality.json").read_text())["method"] == "pca"
    assert sorted(path.name for path in (area.run / "maps").iterdir()) == ["hidden"]


KILLED_IN_A_SWAP = """
import hashlib, os, shutil, signal, sys
from layerlapse.store.run import RunFolder
run = RunFolder.open_for_writing(sys.argv[1])
staged = run.stage_maps("hidden")
shutil.copytree(run.path / "maps" / "hidden", staged, dirs_exist_ok=True)
(staged / "epoch_000.npy").write_bytes(b"a half-swapped new map")
run.stage_maps("other")  # a second layer's stage, not swapped in yet
files = {path.relative_to(staged).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
         for path in staged.rglob("*") if path.is_file()}
run.commit = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)  # killed after the renames, before it
run.swap_maps({"hidden": files}, {"method": "pca"})
"""


def test_a_redraw_killed_between_its_renames_is_undone_by_the_next_writer(area: Area, main_here) -> None:
    """Killed after the old maps moved aside and the new ones in, before the commit: the next writer puts the old
    ones back and drops the stages."""
    maps_before = map_files(area.run)
    maps = area.run / "maps"
    killed = subprocess.run([sys.executable, "-c", KILLED_IN_A_SWAP, str(area.run)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (maps / "hidden" / "epoch_000.npy").read_bytes() == b"a half-swapped new map"
    left = sorted(path.name[:5] if path.name.startswith(".") else path.name for path in maps.iterdir())
    assert left == [".new-", ".old-", "hidden"]  # the stage of "other", the old maps of "hidden", the new ones
    result = main_here("render", area.run, "-q")
    assert result.returncode == 0, result.stderr
    assert map_files(area.run) == maps_before
    assert sorted(path.name for path in maps.iterdir()) == ["hidden"]


KILLED_AFTER_A_SWAP = """
import hashlib, os, shutil, signal, sys
import layerlapse.store.run as store_run
from layerlapse.store.run import RunFolder
run = RunFolder.open_for_writing(sys.argv[1])
staged = run.stage_maps("hidden")
shutil.copytree(run.path / "maps" / "hidden", staged, dirs_exist_ok=True, ignore=shutil.ignore_patterns("notes.txt"))
files = {path.relative_to(staged).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
         for path in staged.rglob("*") if path.is_file()}
store_run._keep_the_users_files = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # killed after the commit
run.swap_maps({"hidden": files}, {"method": "pca"})
"""


def test_a_redraw_killed_after_its_commit_is_finished_and_keeps_the_user_s_files(area: Area, main_here) -> None:
    """Killed after the new maps were committed, before the old ones went: the next writer deletes the old maps
    and keeps the user's file that was among them."""
    (area.run / "maps/hidden/notes.txt").write_text("the user's")
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_A_SWAP, str(area.run)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (area.run / "maps/hidden/notes.txt").exists()  # still among the moved-aside maps
    result = main_here("report", area.run)
    assert result.returncode == 0, result.stderr
    assert (area.run / "maps/hidden/notes.txt").read_text() == "the user's"
    assert area.manifest()["maps"]["method"] == "pca"  # the swap stands
    assert sorted(path.name for path in (area.run / "maps").iterdir()) == ["hidden"]


# ---- labels and class names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "expected"), [
    (lambda labels: labels + 20, r"probe/labels\.npy holds class \d+ but the manifest names 10 classes"),
    (lambda labels: -labels - 1, r"probe/labels\.npy holds class -\d+ but the manifest names 10 classes"),
    (lambda labels: labels.reshape(-1, 1), r"probe/labels\.npy cannot be read \(it holds int64 of shape \(\d+, 1\)"),
    (lambda labels: labels[:-7], r"probe/labels\.npy cannot be read \(it holds [\d,]+ labels for [\d,]+ images\)"),
])
def test_labels_out_of_range_or_of_the_wrong_shape_are_one_line(area: Area, main_here, change, expected) -> None:
    labels = np.load(area.run / "probe/labels.npy")
    np.save(area.run / "probe/labels.npy", change(labels))
    area.relist("probe/labels.npy")
    for command in (["render", area.run], ["report", area.run], ["render", area.run, "--map", "pca"]):
        assert_error(main_here(*command), expected)


def test_fewer_class_names_than_classes_is_one_line(area: Area, main_here) -> None:
    manifest = area.manifest()
    manifest["dataset"]["class_names"] = manifest["dataset"]["class_names"][:9]
    area.write_manifest(manifest)
    for command in (["render", area.run], ["report", area.run]):
        assert_error(main_here(*command), r"holds class 9 but the manifest names 9 classes \(dataset\.class_names\): "
                                          r"give every class a name there")


def test_a_long_class_name_is_shortened_in_the_confusion_matrix(area: Area, main_here) -> None:
    manifest = area.manifest()
    manifest["dataset"]["class_names"][3] = "a class name as long as a reader accepts " * 24  # 984 characters
    area.write_manifest(manifest)
    result = main_here("render", area.run, "-q")
    assert result.returncode == 0, result.stderr
    assert area.manifest()["files"]["figures/confusion.png"] == hashlib.sha256(
        (area.run / "figures/confusion.png").read_bytes()).hexdigest()


def recorder(out: Path, *, layer: str = "hidden", class_names: list[str] | None = None, width: int = 8,
             draw: bool = False):
    """A Recorder of a tiny network on 60 random inputs, with a test set; `layer` names its first Linear (of
    `width` outputs)."""
    import torch
    from torch import nn

    from layerlapse import Recorder

    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module(layer, nn.Linear(4, width))
    model.add_module("end", nn.Linear(width, 2))
    inputs, labels = torch.rand(60, 4), np.arange(60) % 2
    return Recorder(model, [layer], inputs, labels=labels, out=str(out), class_names=class_names or ["a", "b"],
                    test_set=inputs, test_labels=labels, batch_size=30, draw=draw)


def test_a_recorder_with_a_long_class_name_and_a_test_set_finishes(tmp_path: Path) -> None:
    recording = recorder(tmp_path / "run", class_names=["a", "a class named at length " * 4], draw=True)
    recording.start()
    recording.epoch_end(1)
    run = recording.finish()
    assert run.status == "complete" and run.has("figures/confusion.png")


@pytest.mark.parametrize(("names", "expected"), [
    ({"layer": "a/b"}, r"layer 'a/b' cannot be recorded: 'a/b' holds a path separator or a control character; "
                       r"a layer's name becomes a folder of the run: rename the module"),
    ({"class_names": ["a", "b" * 10_000]}, r"class name 1 \('bbbb.*…\) cannot be recorded: it is 10,000 "
                                            r"characters long, over the 1,000 a run holds; give every class a name "
                                            r"of at most 1,000 characters"),
    ({"class_names": ["a", "b" * 1_000_000]}, r"class name 1 .* is 1,000,000 characters long, over the 1,000"),
])
def test_the_recorder_refuses_at_once_a_name_the_reader_would_refuse(tmp_path: Path, names: dict,
                                                                      expected: str) -> None:
    from layerlapse.errors import ConfigError

    recording = recorder(tmp_path / "run", **names)
    with pytest.raises(ConfigError) as raised:
        recording.start()
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 300
    assert re.search(expected, str(raised.value)), str(raised.value)
    assert not (tmp_path / "run" / "manifest.json").exists()


# ---- activations with no columns -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["render"], ["render", "--map", "pca"]])
def test_activations_with_no_columns_are_one_line(area: Area, main_here, command: list[str]) -> None:
    for relpath in area.manifest()["files"]:
        if "activations/" in relpath:
            rows = np.load(area.run / relpath).shape[0]
            np.save(area.run / relpath, np.zeros((rows, 0), np.float16))
            area.relist(relpath)
    before = recorded(area.run)
    assert_error(main_here(command[0], area.run, *command[1:]),
                 r"run folder .* is damaged: activations/hidden/epoch_00\d\.npy cannot be read \(it holds no values "
                 r"per input: shape \(1437, 0\)\); restore it, or record the run again with --force")
    assert recorded(area.run) == before


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
def test_the_recorder_refuses_a_layer_with_no_outputs(tmp_path: Path) -> None:
    from layerlapse.errors import ConfigError

    recording = recorder(tmp_path / "run", width=0)
    with pytest.raises(ConfigError, match=r"layer 'hidden' gives no values per input \(its activations are of "
                                          r"shape \(60, 0\)\): record a layer that outputs something"):
        recording.start()


# ---- checkpoints ---------------------------------------------------------------------------------------------------


class Boom:
    def __reduce__(self):
        return (os.system, (f"touch {BOOM_MARK}",))


BOOM_MARK = Path("/tmp/layerlapse-drill-unpickled")


def test_a_malicious_checkpoint_is_refused_without_advice_to_unpickle_it(area: Area, main_here) -> None:
    import torch

    BOOM_MARK.unlink(missing_ok=True)
    relpath = "checkpoints/epoch_002.pt"
    torch.save({"model": Boom(), "optimizer": {}}, area.run / relpath)
    area.relist(relpath)
    interrupt(area)
    line = assert_error(main_here(*RUN_ARGS, "--out", area.run, "--resume"),
                        r"checkpoints/epoch_002\.pt is not a checkpoint layerlapse can load .* never unpickled")
    assert "weights_only" not in line
    assert not BOOM_MARK.exists()


# ---- one writer at a time ------------------------------------------------------------------------------------------

HOLD = """
import sys, time
from layerlapse.store.run import RunFolder
run = RunFolder.open_for_writing(sys.argv[1])
print("holding", flush=True)
time.sleep(600)
"""


def test_a_second_writer_is_told_who_holds_the_run_and_a_killed_holder_frees_it_at_once(area: Area,
                                                                                       main_here) -> None:
    interrupt(area)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(area.run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        for command in (["render", area.run], ["report", area.run], [*RUN_ARGS, "--out", area.run, "--resume"],
                        [*RUN_ARGS, "--out", area.run, "--force"]):
            fix = "write the report outside it" if command[0] == "report" else "wait for it"
            assert_error(main_here(*command), rf"run folder {re.escape(str(area.run))} is being written by another "
                                              rf"process \(pid {holder.pid}, `.*`, since [\d:\- ]+\): {fix}")
        result = main_here("report", area.run, "--out", area.outside.parent / "elsewhere.html")
        assert result.returncode == 0, result.stderr  # a reader needs no lock
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    resumed = main_here(*RUN_ARGS, "--out", area.run, "--resume")  # the kernel freed the lock with the holder
    assert resumed.returncode == 0, resumed.stderr
    assert area.manifest()["status"] == "complete" and area.manifest()["epochs_complete"] == 3


def test_a_lock_file_hard_linked_to_a_file_outside_is_replaced_never_written_through(area: Area,
                                                                                     main_here) -> None:
    lock = area.run / ".layerlapse-lock"
    lock.unlink()
    os.link(area.outside / "victim.txt", lock)
    result = main_here("report", area.run)
    assert result.returncode == 0, result.stderr
    assert lock.stat().st_nlink == 1 and not lock.samefile(area.outside / "victim.txt")
    assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_hard_link_copies_of_a_run_do_not_block_each_other_s_writers(area: Area, main_here) -> None:
    """As hard-link backups (cp -al, rsync --link-dest) make them: one copied while no one writes the run, one while
    a writer holds it. Each copy's writer goes ahead; a second writer of the run itself is still refused."""
    idle_copy, busy_copy = area.run.parent / "idle-copy", area.run.parent / "busy-copy"
    subprocess.run(["cp", "-al", area.run, idle_copy], check=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(area.run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        subprocess.run(["cp", "-al", area.run, busy_copy], check=True)
        before = {relpath: digest for relpath, digest in hashes(area.run).items() if relpath != ".layerlapse-lock"}
        for copy in (idle_copy, busy_copy):
            result = main_here("report", copy)
            assert result.returncode == 0, result.stderr
        assert_error(main_here("report", area.run), rf"is being written by another process \(pid {holder.pid}, ")
        after = {relpath: digest for relpath, digest in hashes(area.run).items() if relpath != ".layerlapse-lock"}
        assert after == before  # the copies' writes never reached the run's files
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_two_resumes_at_once_one_runs_and_the_other_is_told(area: Area) -> None:
    interrupt(area)
    command = [sys.executable, "-m", "layerlapse", *RUN_ARGS, "--out", str(area.run), "--resume"]
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [subprocess.CompletedProcess(command, process.wait(timeout=300), *process.communicate())
               for process in both]
    winner = [position for position, result in enumerate(results) if result.returncode == 0]
    assert len(winner) == 1, [result.stderr for result in results]
    assert_error(results[1 - winner[0]], rf"is being written by another process \(pid {both[winner[0]].pid}, "
                                         r"`layerlapse run .*--resume`, since")
    assert area.manifest()["status"] == "complete" and area.manifest()["epochs_complete"] == 3


def test_sigkill_during_the_final_drawing_then_resume_completes(area: Area) -> None:
    interrupt(area)
    command = [sys.executable, "-m", "layerlapse", *RUN_ARGS, "--out", str(area.run), "--resume"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    drawing = area.run / "frames"
    before = (drawing / "epoch_003.png")
    while not before.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # epoch 3's frame: the final drawing has begun
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert area.manifest()["status"] == "running"
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    manifest = area.manifest()
    assert manifest["status"] == "complete" and manifest["epochs_complete"] == 3
    from layerlapse import load_run

    load_run(area.run)  # every listed file whole
    assert not list(area.run.rglob(".*.tmp-*"))


# ---- the manifest's size ---------------------------------------------------------------------------------------------


def test_report_on_a_manifest_near_the_cap_keeps_it_readable(area: Area, main_here) -> None:
    """63 MB of accented text on disk (2 bytes a character) once grew past the 64 MB cap when written again, and
    every command, --force included, then refused the run."""
    manifest = area.manifest()
    manifest["padding"] = "é" * 31_500_000
    (area.run / "manifest.json").write_bytes(json.dumps(manifest, ensure_ascii=False).encode())
    result = main_here("report", area.run)
    assert result.returncode == 0, result.stderr
    assert (area.run / "manifest.json").stat().st_size <= 64_000_000
    from layerlapse import load_run

    assert load_run(area.run).manifest["padding"] == manifest["padding"]


def test_a_manifest_that_would_pass_the_cap_is_not_written_and_the_old_one_stays(area: Area, main_here) -> None:
    manifest = area.manifest()
    del manifest["files"]["report.html"]  # the report adds its line to a manifest already at the cap
    manifest["padding"] = ""
    compact = json.dumps(manifest, separators=(",", ":"))
    manifest["padding"] = "x" * (64_000_000 - len(compact) - 10)
    text = json.dumps(manifest, separators=(",", ":")).encode()
    (area.run / "manifest.json").write_bytes(text)
    assert_error(main_here("report", area.run),
                 r"run folder .*: its manifest would grow to 64\.0 MB, over the 64 MB layerlapse reads back, so it "
                 r"was not written \(the run stays as last committed\)")
    assert (area.run / "manifest.json").read_bytes() == text


# ---- full and read-only disks, for real --------------------------------------------------------------------------


def namespace_problem() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"this user cannot mount in a private namespace ({probe.stderr.strip()[:80]})"
    return None


needs_mounts = pytest.mark.skipif(namespace_problem() is not None, reason=str(namespace_problem()))
LAYERLAPSE = f"{sys.executable} -m layerlapse"


def in_namespace(script: str, timeout: float = 600) -> list[tuple[int, str]]:
    """Run `script` (sh) in a private mount namespace; each `step CMD` prints CMD's exit code and stderr, parsed
    here into (code, stderr) pairs."""
    prelude = 'step() { err=$("$@" 2>&1 >/dev/null); echo "@@ $? $err"; }\n'
    result = subprocess.run(["unshare", "-m", "sh", "-c", prelude + script], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr
    steps = []
    for chunk in result.stdout.split("@@ ")[1:]:
        code, _, err = chunk.partition(" ")
        steps.append((int(code), err.strip()))
    return steps


def as_result(step: tuple[int, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], step[0], "", step[1] + "\n" if step[1] else "")


@needs_mounts
def test_a_read_only_run_folder_is_one_line_for_every_writer(area: Area) -> None:
    interrupt(area)
    before = hashes(area.run)
    run = area.run
    steps = in_namespace(f"""
        mount --bind {run} {run} && mount -o remount,bind,ro {run}
        step {LAYERLAPSE} render {run}
        step {LAYERLAPSE} report {run}
        step {LAYERLAPSE} {' '.join(RUN_ARGS)} --out {run} --resume
        step {LAYERLAPSE} report {run} --out {area.outside.parent}/elsewhere.html
    """)
    for step in steps[:3]:
        assert_error(as_result(step), r"cannot write to run folder .* \(Read-only file system\): writing needs a "
                                      r"folder you can write to")
    assert steps[3][0] == 0, steps[3]
    assert hashes(area.run) == before


@needs_mounts
def test_a_disk_that_fills_during_a_run_then_resume_once_space_is_freed(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    run = disk / "run"
    check = f"{sys.executable} -c \"from layerlapse import load_run; r = load_run('{run}'); print(r.epochs_complete)\""
    steps = in_namespace(f"""
        mount -t tmpfs -o size=4m tmpfs {disk}
        step {LAYERLAPSE} {' '.join(RUN_ARGS)} --epochs 3 --out {run}
        step {check}
        mount -o remount,size=64m {disk}
        step {LAYERLAPSE} {' '.join(RUN_ARGS)} --epochs 3 --out {run} --resume
        step {check}
    """)
    assert_error(as_result(steps[0]), rf"no space left on the disk holding {re.escape(str(run))}\S* while writing "
                                      r"\S+ \([\d.]+ (MB|bytes) needed, [\d.,]+ (MB|bytes) free\): free some space")
    assert steps[1][0] == 0, steps[1]  # what was committed is whole
    assert steps[2][0] == 0, steps[2]
    assert steps[3] == (0, "")


@needs_mounts
def test_a_disk_that_fills_during_a_redraw_or_a_report_keeps_the_last_good_maps(area: Area) -> None:
    size_kb = sum(path.stat().st_size for path in area.run.rglob("*") if path.is_file()) // 1024
    disk = area.run.parent / "disk"
    disk.mkdir()
    run = disk / "run"
    report_kb = (area.run / "report.html").stat().st_size // 1024
    steps = in_namespace(f"""
        mount -t tmpfs -o size={size_kb + 300}k tmpfs {disk}
        cp -a {area.run} {run}
        rm {run}/report.html
        dd if=/dev/zero of={disk}/filler bs=1k count={report_kb - 200} 2>/dev/null
        step {LAYERLAPSE} report {run}
        dd if=/dev/zero of={disk}/filler2 bs=1k count=100000 2>/dev/null
        step {LAYERLAPSE} render {run} --map pca
        cp -a {run}/maps {area.run.parent}/maps-after
        cp {run}/manifest.json {area.run.parent}/manifest-after.json
    """)
    for step in steps:
        assert_error(as_result(step), r"no space left on the disk holding")
    after = area.run.parent / "maps-after"
    assert hashes(after) == {relpath[len("maps/"):]: digest for relpath, digest in map_files(area.run).items()}
    assert json.loads((area.run.parent / "manifest-after.json").read_text())["maps"]["method"] == "aligned"
