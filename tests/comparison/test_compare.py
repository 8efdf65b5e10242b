"""`compare` on real runs: a run against itself, two seeds, two architectures, each measure checked against an
independent computation (numpy, scikit-learn) on the runs' own files; and every input it refuses, with nothing
written into the runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from comparison_runs import mlp_on_the_probe_of

from layerlapse import compare
from layerlapse.comparison.folder import MANIFEST
from layerlapse.errors import CompareError
from layerlapse.measures.representation import MEASURE_SAMPLE, linear_cka, measure_sample
from layerlapse.report.page import page_payload
from layerlapse.store import layout
from layerlapse.store.run import RunFolder


def measures_of(folder: Path) -> dict:
    return json.loads((folder / "measures.json").read_text())


def items_of(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "items.npz", allow_pickle=False) as found:
        return dict(found)


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and mtime: what "nothing written" is checked against."""
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def itself(seed0: RunFolder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compare([seed0.path, seed0.path], tmp_path_factory.mktemp("itself") / "out")


@pytest.fixture(scope="module")
def seeds(seed0: RunFolder, seed1: RunFolder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compare([seed0.path, seed1.path], tmp_path_factory.mktemp("seeds") / "out", names=["seed 0", "seed 1"])


@pytest.fixture(scope="module")
def architectures(seed0: RunFolder, mlp: RunFolder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compare([seed0.path, mlp.path], tmp_path_factory.mktemp("archs") / "out", names=["CNN", "MLP"])


def test_a_run_against_itself_is_the_same_in_every_measure(itself: Path, seed0: RunFolder) -> None:
    measured = measures_of(itself)
    pair = measured["pairs"][0]
    for frame in pair["cka"]["per_snapshot"]:
        assert np.diagonal(np.array(frame)) == pytest.approx([1.0, 1.0])
    for overlap in pair["neighbour_overlap"]:
        if overlap["left_layer"] == overlap["right_layer"]:
            assert overlap["mean_per_snapshot"] == pytest.approx([1.0] * (seed0.epochs_complete + 1))
    for shares in pair["agreement"]:
        assert shares["left_only"] == shares["right_only"] == 0 and shares["same_prediction"] == 1.0
    assert pair["dynamics"]["learned_by"]["left only"] == pair["dynamics"]["learned_by"]["right only"] == 0
    assert all(value == pytest.approx(0.0, abs=1e-9) for values in measured["runs"][1]["map_disparity_to_first"]
               .values() for value in values)
    coords = page_payload((itself / "report.html").read_text())["layers"]
    np.testing.assert_array_equal(coords[0]["probe"], coords[2]["probe"])  # A · hidden, B · hidden: identical


def test_two_seeds_measured_as_numpy_and_scikit_learn_measure_them(seeds: Path, seed0: RunFolder,
                                                                    seed1: RunFolder) -> None:
    """CKA, neighbour overlap and agreement at every snapshot, from the runs' own activation and prediction files."""
    from sklearn.neighbors import NearestNeighbors

    measured, items = measures_of(seeds), items_of(seeds)
    assert measured["items"]["shared"] == 300 and measured["items"]["rule"] == "joined by index in digits"
    sample = measure_sample(300, 0, MEASURE_SAMPLE)
    pair = measured["pairs"][0]
    labels = seed0.probe_labels()
    for snapshot in range(seed0.epochs_complete + 1):
        a, b = (np.load(run.path / layout.activations("hidden", snapshot)).astype(np.float64) for run in (seed0, seed1))
        assert pair["cka"]["per_snapshot"][snapshot][0][0] == pytest.approx(linear_cka(a[sample], b[sample]), abs=1e-5)
        near = [NearestNeighbors(n_neighbors=11).fit(x).kneighbors(x, return_distance=False)[:, 1:] for x in (a, b)]
        expected = [len(set(near[0][i]) & set(near[1][i])) for i in range(300)]
        np.testing.assert_array_equal(items["pair0_1_overlap_0_0"][snapshot], expected)
        predicted = [np.load(run.path / layout.predictions(snapshot)).argmax(1) for run in (seed0, seed1)]
        both = np.mean((predicted[0] == labels) & (predicted[1] == labels))
        assert pair["agreement"][snapshot]["both_right"] == pytest.approx(both)
        assert pair["agreement"][snapshot]["same_prediction"] == pytest.approx(np.mean(predicted[0] == predicted[1]))


def test_two_architectures_of_other_widths_compare_by_position(architectures: Path, seed0: RunFolder,
                                                               mlp: RunFolder) -> None:
    measured = measures_of(architectures)
    assert measured["items"]["rule"].startswith("joined by position")
    pair = measured["pairs"][0]
    assert pair["cka"]["left_layers"] == ["hidden", "flat1"] and pair["cka"]["right_layers"] == ["1", "3"]
    assert np.array(pair["cka"]["per_snapshot"]).shape == (seed0.epochs_complete + 1, 2, 2)
    sample = measure_sample(300, 0, MEASURE_SAMPLE)
    last = seed0.epochs_complete
    for a, left in enumerate(("hidden", "flat1")):
        for b, right in enumerate(("1", "3")):
            x = np.load(seed0.path / layout.activations(left, last)).astype(np.float64)  # 512 or 128 wide
            y = np.load(mlp.path / layout.activations(right, last)).astype(np.float64)  # 128 or 32 wide
            assert pair["cka"]["per_snapshot"][last][a][b] == pytest.approx(linear_cka(x[sample], y[sample]),
                                                                            abs=1e-5)
    # learned by: right at the last snapshot in both, one, neither; from the prediction files
    labels = seed0.probe_labels()
    right = [np.load(run.path / layout.predictions(last)).argmax(1) == labels for run in (seed0, mlp)]
    assert pair["dynamics"]["learned_by"] == {"both": int(np.sum(right[0] & right[1])),
                                              "left only": int(np.sum(right[0] & ~right[1])),
                                              "right only": int(np.sum(~right[0] & right[1])),
                                              "neither": int(np.sum(~right[0] & ~right[1]))}
    payload = page_payload((architectures / "report.html").read_text())
    assert [layer["name"] for layer in payload["layers"]] == ["CNN · hidden", "CNN · flat1", "MLP · 1", "MLP · 3"]
    assert payload["probe"]["atlases"] is not None  # the CNN's thumbnails, though the MLP stored none
    assert payload["comparison"]["initialCompare"] == "MLP · 1"


def test_the_folder_holds_what_it_lists(seeds: Path) -> None:
    listing = json.loads((seeds / MANIFEST).read_text())
    assert listing["format"] == "layerlapse-comparison" and [run["name"] for run in listing["runs"]] == ["seed 0",
                                                                                                         "seed 1"]
    assert {"report.html", "measures.json", "items.npz", "figures/maps.png", "figures/measures.png",
            "figures/curves.png", "figures/confusion_difference.png"} <= set(listing["files"])
    from layerlapse.store.atomic import sha256_file

    assert all(sha256_file(seeds / relpath) == digest for relpath, digest in listing["files"].items())


def test_three_runs_give_the_spread_across_seeds(seed0: RunFolder, seed1: RunFolder, runs_folder: Path,
                                                 tmp_path: Path) -> None:
    from comparison_runs import cnn_run

    seed2 = cnn_run(runs_folder, 2)
    out = compare([seed0.path, seed1.path, seed2.path], tmp_path / "out")
    seeds = measures_of(out)["seeds"]
    assert seeds["recipe_count"] == 1 and seeds["recipes"] == [0, 0, 0]
    within = seeds["pairwise_at_last_snapshot"]["within"]
    assert within["cka_first_layers"]["count"] == 3 and seeds["pairwise_at_last_snapshot"]["between"] == {}
    items = items_of(out)
    right = np.stack([items[f"run{k}_predicted"][-1] == items["labels"] for k in range(3)]).mean(axis=0)
    assert seeds["items"] == {"every_run": int((right == 1).sum()), "no_run": int((right == 0).sum()),
                              "seed_dependent": int(((right > 0) & (right < 1)).sum())}
    assert (out / "figures" / "seeds.png").is_file()


# ---- refused, each in one line, nothing written into the runs ---------------------------------------------------

def test_one_run_only_is_refused(seed0: RunFolder, tmp_path: Path) -> None:
    with pytest.raises(CompareError, match=r"compare needs two runs or more, got 1: name another run folder"):
        compare([seed0.path], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_a_run_is_refused(seed0: RunFolder, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(CompareError, match=r"notes is not a run folder \(it has no manifest.json\)"):
        compare([seed0.path, tmp_path / "notes"], tmp_path / "out")
    with pytest.raises(CompareError, match=r"missing is not a folder: name the run folders to compare"):
        compare([seed0.path, tmp_path / "missing"], tmp_path / "out")


def test_an_incomplete_run_is_refused(seed0: RunFolder, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(seed0.path, copy, ignore=shutil.ignore_patterns(layout.LOCK))
    manifest = json.loads((copy / layout.MANIFEST).read_text())
    manifest["status"] = "interrupted"
    (copy / layout.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CompareError, match=r"copy is not complete \(status 'interrupted'\): let it finish, or "
                                           r"continue it with --resume"):
        compare([seed0.path, copy], tmp_path / "out")


def test_probes_of_other_items_are_refused_naming_the_first_that_differs(seed0: RunFolder, tmp_path: Path) -> None:
    shuffled = mlp_on_the_probe_of(seed0, tmp_path / "shuffled", shuffle_probe=True)
    before = tree(seed0.path), tree(shuffled.path)
    with pytest.raises(CompareError, match=r"do not hold the same probe: item probe row \d+ is a \d in one and a \d "
                                           r"in the other; record both on the same probe"):
        compare([seed0.path, shuffled.path], tmp_path / "out")
    assert (tree(seed0.path), tree(shuffled.path)) == before and not (tmp_path / "out").exists()


def test_an_output_inside_a_run_folder_is_refused(seed0: RunFolder, seed1: RunFolder) -> None:
    before = tree(seed0.path)
    for out in (seed0.path / "compare", seed0.path):
        with pytest.raises(CompareError, match=r"lies inside the run folder .*seed0.*: choose a folder of its own"):
            compare([seed0.path, seed1.path], out)
    assert tree(seed0.path) == before


def test_a_folder_in_use_is_replaced_only_with_force_and_only_if_a_comparison(seeds: Path, seed0: RunFolder,
                                                                             seed1: RunFolder, tmp_path: Path) -> None:
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.txt").write_text("mine")
    with pytest.raises(CompareError, match=r"mine is not empty: pass --force to replace the comparison in it"):
        compare([seed0.path, seed1.path], other)
    with pytest.raises(CompareError, match=r"mine holds no comparison to replace \(no readable comparison.json\)"):
        compare([seed0.path, seed1.path], other, force=True)
    assert (other / "thesis.txt").read_text() == "mine"


def test_force_replaces_only_what_the_comparison_listed(seed0: RunFolder, seed1: RunFolder, tmp_path: Path) -> None:
    out = compare([seed0.path, seed1.path], tmp_path / "out")
    (out / "notes.txt").write_text("mine")
    compare([seed1.path, seed0.path], out, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert [run["name"] for run in measures_of(out)["runs"]] == ["A", "B"]


def test_a_link_in_the_output_is_never_written_through(seed0: RunFolder, seed1: RunFolder, tmp_path: Path) -> None:
    import shutil

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "maps.png").write_bytes(b"not ours")
    out = compare([seed0.path, seed1.path], tmp_path / "out")
    shutil.rmtree(out / "figures")
    os.symlink(outside, out / "figures")
    with pytest.raises(CompareError, match=r"figures is a symbolic link, and layerlapse never writes through a link"):
        compare([seed0.path, seed1.path], out, force=True)
    assert [path.name for path in outside.iterdir()] == ["maps.png"]
    assert (outside / "maps.png").read_bytes() == b"not ours"
    os.symlink(outside, tmp_path / "linked")
    with pytest.raises(CompareError, match=r"linked is not a folder: choose another --out"):
        compare([seed0.path, seed1.path], tmp_path / "linked")


def test_names_must_fit_the_runs(seed0: RunFolder, seed1: RunFolder, tmp_path: Path) -> None:
    with pytest.raises(CompareError, match=r"1 names for 2 runs: give one name per run"):
        compare([seed0.path, seed1.path], tmp_path / "out", names=["only"])
    with pytest.raises(CompareError, match=r"run names must be different"):
        compare([seed0.path, seed1.path], tmp_path / "out", names=["x", "x"])


# ---- the command line, and snapshots matched by step ------------------------------------------------------------

def test_the_command_writes_the_folder_and_says_where(main_here, seed0: RunFolder, seed1: RunFolder,
                                                      tmp_path: Path) -> None:
    result = main_here("compare", seed0.path, seed1.path, "--out", tmp_path / "out", "--name", "zero", "--name",
                       "one", "--quiet")
    assert result.returncode == 0, result.stderr
    assert [run["name"] for run in measures_of(tmp_path / "out")["runs"]] == ["zero", "one"]
    result = main_here("compare", seed0.path, "--out", tmp_path / "other")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == ("error: compare needs two runs or more, got 1: name another "
                                                      "run folder (the same one twice compares a run with itself)")


class StepRun:
    """What matching snapshots reads of a run: its manifest's snapshots, its layers and which maps it lists."""

    def __init__(self, steps: list[int], epochs: list[int] | None = None) -> None:
        labels = [{"step": step, **({"epoch": epochs[k]} if epochs else {})} for k, step in enumerate(steps)]
        self.manifest = {"snapshots": labels, "epochs_complete": len(steps) - 1}
        self.layers, self.epochs_complete, self.path = ["h"], len(steps) - 1, Path("run")

    def has(self, relpath: str) -> bool:
        return relpath.startswith("maps/h/epoch_")


def test_step_runs_are_matched_by_the_fraction_of_training_done() -> None:
    from layerlapse.comparison.join import _match_snapshots

    short, long = StepRun([0, 10, 20, 40, 80, 100]), StepRun([0, 100, 200, 400, 600, 800, 1000])
    frames, rule = _match_snapshots([short, long])
    # short's fractions 0, .1, .2, .4, .8, 1 against long's 0, .1, .2, .4, .6, .8, 1
    assert frames == [[0, 0], [1, 1], [2, 2], [3, 3], [4, 5], [5, 6]]
    assert rule.startswith("snapshots matched by the fraction of training done")


def test_probes_of_other_sizes_compare_on_the_items_they_share(seed0: RunFolder, tmp_path: Path) -> None:
    from run_helpers import recorded_and_drawn

    from layerlapse.config import RunConfig

    smaller = recorded_and_drawn(RunConfig(dataset="digits", epochs=1, layers=("hidden",), probe=250, test_probe=0,
                                           seed=5, data_seed=1, map_method="pca"), tmp_path / "smaller")
    shared = np.intersect1d(seed0.probe_indices(), smaller.probe_indices())
    out = compare([seed0.path, smaller.path], tmp_path / "out")
    measured = measures_of(out)
    assert measured["items"]["shared"] == len(shared) < 250
    assert measured["items"]["notes"] == [f"compared on the {len(shared):,} probe items every run holds (of 300, 250)"]
    np.testing.assert_array_equal(items_of(out)["ids"], shared)
    assert len(measured["snapshots"]["frames"]) == 2  # epochs 0 and 1, the snapshots both runs have
    assert measured["items"]["notes"][0] in (out / "report.html").read_text()


def test_a_comparison_that_fails_leaves_the_one_it_was_to_replace(seed0: RunFolder, seed1: RunFolder,
                                                                  tmp_path: Path) -> None:
    from layerlapse.errors import ConfigError

    def files(folder: Path) -> dict:  # the lock file records each writer that took it
        return {name: found for name, found in tree(folder).items() if name != layout.LOCK}

    out = compare([seed0.path, seed1.path], tmp_path / "out")
    before = files(out)
    with pytest.raises(ConfigError, match=r"size_budget_mb=0.001 is too small for this run"):
        compare([seed1.path, seed0.path], out, force=True, size_budget_mb=0.001)
    assert files(out) == before
    with pytest.raises(ConfigError, match=r"size_budget_mb must be a positive number of megabytes, got 0"):
        compare([seed1.path, seed0.path], out, force=True, size_budget_mb=0)


def test_fewer_neighbour_items_measure_a_sample_and_say_so(seed0: RunFolder, seed1: RunFolder, tmp_path: Path
                                                           ) -> None:
    from layerlapse.errors import ConfigError

    out = compare([seed0.path, seed1.path], tmp_path / "out", neighbour_items=100)
    overlap = items_of(out)["pair0_1_overlap_0_0"]
    assert ((overlap != 255).sum(axis=1) == 100).all() and measures_of(out)["samples"]["neighbour_items"] == 100
    assert "neighbour overlap measured on a seeded sample of 100 items" in (out / "report.html").read_text()
    with pytest.raises(ConfigError, match=r"neighbour_items must be a whole number above 10, got 5"):
        compare([seed0.path, seed1.path], tmp_path / "other", neighbour_items=5)


def test_runs_of_other_classes_are_refused(seed0: RunFolder, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "letters"
    shutil.copytree(seed0.path, copy, ignore=shutil.ignore_patterns(layout.LOCK))
    manifest = json.loads((copy / layout.MANIFEST).read_text())
    manifest["dataset"]["class_names"] = list("abcdefghij")
    (copy / layout.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CompareError, match=r"name their classes differently \(0, 1, 2, 3, 4, … against a, b, c, d, "
                                           r"e, …\): compare runs of one task"):
        compare([seed0.path, copy], tmp_path / "out")


def test_an_output_in_a_run_folder_reached_through_a_link_is_refused(seed0: RunFolder, seed1: RunFolder,
                                                                    tmp_path: Path) -> None:
    os.symlink(seed0.path, tmp_path / "linked-run")
    before = tree(seed0.path)
    with pytest.raises(CompareError, match=r"lies inside the run folder .*linked-run: choose a folder of its own"):
        compare([seed0.path, seed1.path], tmp_path / "linked-run" / "compare")
    assert tree(seed0.path) == before
