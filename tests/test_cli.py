"""Tests for the `layerlapse` command: real runs on the bundled digits, errors through the real entry point.

Runs that train go through Typer's CliRunner in this process (UMAP's compiled code is then loaded once). Exit codes
and the one-line error format need `cli.main()`, the console script's entry point, which turns a LayerlapseError into
"error: ..." and exit code 2: a subprocess of `python -m layerlapse` or the console script where starting one is
cheap or the fresh process matters (nothing else may reach stderr), else `main()` called in this process, because a
fresh process that imports torch and scikit-learn costs 5-8 s on the 2-core machine.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error
from PIL import Image
from typer.testing import CliRunner

from layerlapse.cli import app
from layerlapse.errors import ConfigError

runner = CliRunner()

LAYER_NAMES = ["conv2D_1", "conv2D_2", "acti1", "pool1", "drop1", "conv2D_3", "conv2D_4", "acti2", "pool2", "drop2",
               "flat1", "hidden", "acti3", "end"]
IDX_NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz"]
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, so any download fails at once
DERIVED = ["figures/samples.png", "figures/curves.png", "figures/train_test.png", "figures/confusion.png",
           "figures/data_map.png", "dynamics/probe.npz", "dynamics/test_probe.npz", "dynamics/layers.json",
           "figures/cka.png", "figures/layer_measures.png",
           "frames/epoch_000.png", "frames/epoch_001.png", "frames/epoch_002.png", "lapse.gif", "lapse.mp4",
           "metrics.json", "report.html"]


# --- helpers --------------------------------------------------------------------------------------------------------


def offline_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The test's environment with no dataset anywhere and every download sent to a closed port."""
    env = dict(os.environ)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = DEAD_PROXY
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    for name, folder in (("LAYERLAPSE_DATA", "no-data"), ("XDG_CACHE_HOME", "no-cache")):
        (tmp_path / folder).mkdir(exist_ok=True)
        env[name] = str(tmp_path / folder)
    env.update(overrides)
    return env


def layerlapse(*args: str | Path, env: dict[str, str], cwd: Path, console_script: bool = False,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the command as a user would, in a fresh process."""
    if console_script:
        command = [str(Path(sys.executable).with_name("layerlapse"))]
    else:
        command = [sys.executable, "-m", "layerlapse"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.tmp-*"))


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and modification time of every file under `folder` (but the run's lock, which names its last writer)."""
    return {path.relative_to(folder).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != ".layerlapse-lock"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def parse_layer_table(output: str) -> dict[str, tuple[str, str]]:
    lines = output.strip().splitlines()
    assert lines[0].split() == ["layer", "type", "output", "per", "image"]
    rows = [line.split(None, 2) for line in lines[1:]]
    return {name: (kind, shape) for name, kind, shape in rows}


def expected_layers(side: int) -> dict[str, tuple[str, str]]:
    """The design's network for square images of `side` pixels: 2×2 "same" convolutions keep the size, pools halve.

    The type column names a kind of layer; the exact class (a faster Dropout, say) is the implementation's choice.
    """
    full, half, quarter = (f"32 × {s} × {s}" for s in (side, side // 2, side // 4))
    return {"conv2D_1": ("Conv2d", full), "conv2D_2": ("Conv2d", full), "acti1": ("ReLU", full),
            "pool1": ("MaxPool2d", half), "drop1": ("Dropout", half), "conv2D_3": ("Conv2d", half),
            "conv2D_4": ("Conv2d", half), "acti2": ("ReLU", half), "pool2": ("MaxPool2d", quarter),
            "drop2": ("Dropout", quarter), "flat1": ("Flatten", str(32 * (side // 4) ** 2)),
            "hidden": ("Linear", "512"), "acti3": ("ReLU", "512"), "end": ("Linear", "10")}


# --- a finished run, shared by the tests that read or redraw it -----------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`layerlapse run --dataset digits --epochs 2 --probe all --out X`, and what it printed."""
    out = tmp_path_factory.mktemp("cli-run") / "digits"
    result = runner.invoke(app, ["run", "--dataset", "digits", "--epochs", "2", "--probe", "all", "--out", str(out)])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return out, result.stdout


@pytest.fixture
def run_copy(digits_run: tuple[Path, str], tmp_path: Path) -> Path:
    """A private copy of the finished run, for tests that change or damage it."""
    copy = tmp_path / "run"
    shutil.copytree(digits_run[0], copy)
    return copy


# --- help, import cost, layers --------------------------------------------------------------------------------------


def test_help_lists_every_command_through_the_console_script(tmp_path: Path) -> None:
    result = layerlapse("--help", env=offline_env(tmp_path), cwd=tmp_path, console_script=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("run", "demo", "render", "layers"):
        assert re.search(rf"^\W*{command}\s", result.stdout, re.MULTILINE), f"{command} missing:\n{result.stdout}"


def test_python_dash_m_layerlapse_help_works(tmp_path: Path) -> None:
    result = layerlapse("--help", env=offline_env(tmp_path), cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "render" in result.stdout and "layers" in result.stdout
    assert re.search(r"--help\s+Show this message and exit", result.stdout), result.stdout  # not `--help <bool>`


@pytest.mark.parametrize("command", ["run", "export", "dynamics", "layers"])
def test_flags_show_no_value_in_help(command: str) -> None:
    """A flag takes no value: Typer 0.29 showed `--help <bool>`, `--force <bool>` as if it took one."""
    result = runner.invoke(app, [command, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout, result.stdout
    assert re.search(r"--help\s+Show this message and exit", result.stdout)


def test_importing_the_cli_loads_neither_torch_nor_umap(tmp_path: Path) -> None:
    code = "import layerlapse.cli, sys; print('torch' in sys.modules, 'umap' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=offline_env(tmp_path),
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(("args", "side"), [([], 28), (["--dataset", "mnist"], 28), (["--dataset", "digits"], 8)])
def test_layers_prints_every_layer_with_its_output_shape(args: list[str], side: int) -> None:
    result = runner.invoke(app, ["layers", *args])
    assert result.exit_code == 0, result.output
    table = parse_layer_table(result.stdout)
    assert list(table) == LAYER_NAMES
    for name, (kind, shape) in expected_layers(side).items():
        assert table[name][1] == shape, name
        assert kind in table[name][0], (name, table[name][0])


def test_layers_of_an_unknown_dataset_is_one_error_line(tmp_path: Path) -> None:
    result = layerlapse("layers", "--dataset", "mnsit", env=offline_env(tmp_path), cwd=tmp_path, timeout=60)
    assert_error(result, r"unknown dataset 'mnsit'.*did you mean 'mnist'")


OWN_MODEL = """
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return x + self.bn(self.conv(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block = Block()
        self.gru = nn.GRU(4, 6, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        sequence, _ = self.gru(self.block(self.stem(x)).flatten(2).transpose(1, 2))
        return self.head(sequence[:, -1])


def make():
    return Net()


not_a_model = 3
"""


def test_layers_of_your_own_model_with_output_shapes(tmp_path: Path) -> None:
    (tmp_path / "mymodels.py").write_text(OWN_MODEL)
    result = layerlapse("layers", "--model", "mymodels:make", "--input-shape", "1,5,5", env=offline_env(tmp_path),
                        cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    table = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    assert list(table) == ["stem", "block", "block.conv", "block.bn", "gru", "head"]
    assert table["block.bn"] == ["BatchNorm2d", "4", "×", "5", "×", "5"]
    assert table["gru"] == ["GRU", "25", "×", "6"]  # a module returning a tuple: its first tensor
    assert table["head"] == ["Linear", "3"]
    without = layerlapse("layers", "--model", "mymodels:Net", env=offline_env(tmp_path), cwd=tmp_path, timeout=120)
    assert without.returncode == 0 and "(give --input-shape)" in without.stdout


@pytest.mark.parametrize(("args", "pattern"), [
    (["--model", "mymodels"], r"--model must be package\.module:factory"),
    (["--model", "nowhere:make"], r"cannot import 'nowhere' for --model .*: run from the folder that holds it"),
    (["--model", "mymodels:mkae"], r"mymodels has no 'mkae' \(did you mean 'make'\?\): name a function, class"),
    (["--model", "mymodels:not_a_model"], r"mymodels:not_a_model gave int, not a torch\.nn\.Module"),
    (["--model", "mymodels:make", "--input-shape", "1,x"], r"--input-shape must be whole numbers separated by "),
    (["--model", "mymodels:make", "--input-shape", "3,5,5"],
     r"the model does not take inputs of shape \(3, 5, 5\) as floats: it failed in layer 'stem' \(Conv2d, takes "
     r"\(N, 1, H, W\) inputs\); torch said: "),
    (["--model", "mymodels:make", "--input-shape", "1,5,5", "--input-dtype", "int"],
     r"the input dtype must be one of auto, float, long \(--input-dtype\), got 'int'$"),
])
def test_layers_of_your_own_model_errors_are_one_line(tmp_path: Path, args: list[str], pattern: str) -> None:
    (tmp_path / "mymodels.py").write_text(OWN_MODEL)
    assert_error(layerlapse("layers", *args, env=offline_env(tmp_path), cwd=tmp_path, timeout=120), pattern)


TEXT_MODEL = """
import torch
from torch import nn


class Embeddings(nn.Module):  # as BERT is built: the model's first module is not itself an nn.Embedding
    def __init__(self):
        super().__init__()
        self.words = nn.Embedding(100, 8)
        self.norm = nn.LayerNorm(8)

    def forward(self, input_ids):
        return self.norm(self.words(input_ids))


class Text(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = Embeddings()
        self.lstm = nn.LSTM(8, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, input_ids, attention_mask=None):
        hidden = self.embeddings(input_ids)
        if attention_mask is not None:
            hidden = hidden * attention_mask.unsqueeze(-1)
        return self.head(self.lstm(hidden)[0][:, -1])
"""


@pytest.mark.parametrize("by_keyword", [False, True])
def test_layers_of_a_token_id_model_positional_or_by_keyword(tmp_path: Path, by_keyword: bool) -> None:
    """Floats were fed: "Expected tensor ... Long, Int; but got torch.FloatTensor". Token ids are tried now."""
    (tmp_path / "textmodels.py").write_text(TEXT_MODEL)
    keywords = ["--input-name", "input_ids", "--input-name", "attention_mask"] if by_keyword else []
    result = layerlapse("layers", "--model", "textmodels:Text", "--input-shape", "16", *keywords,
                        env=offline_env(tmp_path), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    table = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    assert table["embeddings.words"] == ["Embedding", "16", "×", "8"]
    assert table["lstm"] == ["LSTM", "16", "×", "6"] and table["head"] == ["Linear", "2"]


def test_cli_runner_shows_the_error_type_that_main_turns_into_exit_code_2() -> None:
    # app() itself raises; only main() prints "error: ..." and exits 2 (tested through subprocesses below)
    result = runner.invoke(app, ["run", "--dataset", "mnsit"])
    assert isinstance(result.exception, ConfigError)
    assert re.search(r"unknown dataset 'mnsit'.*did you mean 'mnist'", str(result.exception))


# --- a run writes every file ----------------------------------------------------------------------------------------


def test_run_writes_every_file_and_reports_the_test_accuracy(digits_run: tuple[Path, str]) -> None:
    out, stdout = digits_run
    for relpath in [*DERIVED, "history.jsonl", "manifest.json", "checkpoints/epoch_002.pt",
                    "maps/hidden/test.npy", "test/labels.npy", "test/predictions.npy", "test/activations/hidden.npy",
                    "probe/indices.npy", "probe/labels.npy", "probe/images.npy"]:
        assert (out / relpath).is_file(), relpath
    for epoch in range(3):
        for folder in ("activations/hidden", "predictions", "maps/hidden"):
            assert (out / folder / f"epoch_{epoch:03d}.npy").is_file()
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    assert temp_files(out) == []
    accuracy = json.loads((out / "metrics.json").read_text())["test_accuracy"]
    assert stdout.splitlines() == [f"test accuracy {accuracy:.4f}",
                                   f"wrote {out}/report.html: open it in any browser, offline",
                                   "beside it: lapse.gif, lapse.mp4, frames/, figures/ and metrics.json"]


def test_probe_all_records_every_training_image(digits_run: tuple[Path, str]) -> None:
    out, _ = digits_run
    indices = np.load(out / "probe/indices.npy", allow_pickle=False)
    assert np.array_equal(indices, np.arange(1437))  # digits: 1797 images, 20 % held out for testing
    activations = np.load(out / "activations/hidden/epoch_002.npy", allow_pickle=False)
    assert activations.shape == (1437, 512) and activations.dtype == np.float16
    assert np.load(out / "maps/hidden/epoch_002.npy", allow_pickle=False).shape == (1437, 2)


def test_gif_has_a_frame_per_epoch_at_500_ms_and_loops(digits_run: tuple[Path, str]) -> None:
    out, _ = digits_run
    with Image.open(out / "lapse.gif") as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 3
        assert gif.info["loop"] == 0
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        assert gif.size == Image.open(out / "frames/epoch_000.png").size
    assert durations == [500, 500, 500]


def test_metrics_hold_test_accuracy_and_a_history_row_per_epoch(digits_run: tuple[Path, str]) -> None:
    out, _ = digits_run
    metrics = json.loads((out / "metrics.json").read_text())
    predicted = np.load(out / "test/predictions.npy", allow_pickle=False).argmax(axis=1)
    labels = np.load(out / "test/labels.npy", allow_pickle=False)
    assert metrics["test_accuracy"] == pytest.approx(float((predicted == labels).mean()), abs=1e-6)
    assert metrics["dataset"] == "digits" and metrics["epochs"] == 2 and metrics["probe_size"] == 1437
    history = metrics["history"]
    assert [row["epoch"] for row in history] == [1, 2]
    for row in history:
        for key in ("loss", "acc", "val_loss", "val_acc", "seconds"):
            assert np.isfinite(row[key]) and row[key] >= 0, (key, row)
        assert 0 <= row["acc"] <= 1 and 0 <= row["val_acc"] <= 1
    lines = (out / "history.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history


def test_manifest_is_complete_and_lists_the_sha256_of_every_file(digits_run: tuple[Path, str]) -> None:
    out, _ = digits_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["epochs_complete"] == 2
    assert manifest["config"]["dataset"] == "digits" and manifest["config"]["probe"] is None
    on_disk = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    assert set(manifest["files"]) == on_disk - {"manifest.json", ".layerlapse-lock"}
    for relpath, digest in manifest["files"].items():
        assert sha256(out / relpath) == digest, relpath


# --- every documented example ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_readme_mnist_command_parses_every_option(mnist_root: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`layerlapse run --dataset mnist --epochs 15 --layer hidden --out runs/mnist`, scaled down with --subset."""
    monkeypatch.setenv("LAYERLAPSE_DATA", str(mnist_root))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "--dataset", "mnist", "--epochs", "1", "--layer", "hidden",
                                 "--out", "runs/mnist", "--subset", "500", "--probe", "200", "--neighbors", "15",
                                 "--seed", "3", "--device", "cpu", "--map", "pca", "--test-probe", "50", "--quiet"])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    manifest = json.loads((tmp_path / "runs/mnist/manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["config"] == {
        "dataset": "mnist", "epochs": 1, "layers": ["hidden"], "probe": 200, "test_probe": 50, "seed": 3,
        "data_seed": 0, "batch_size": 100, "learning_rate": 0.001, "validation_split": 0.2, "n_neighbors": 15, "map_method": "pca",
        "map_backend": "auto", "device": "cpu", "train_subset": 500, "loop": "built-in"}
    assert manifest["maps"]["method"] == "pca" and manifest["maps"]["backend"] is None  # a backend is the aligned map's
    assert manifest["dataset"]["train_size"] == 500 and manifest["dataset"]["probe_size"] == 200
    assert manifest["dataset"]["test_size"] == 10_000 and manifest["dataset"]["image_shape"] == [28, 28]
    assert manifest["maps"]["n_neighbors"] == 15 and manifest["maps"]["seed"] == 3
    assert (tmp_path / "runs/mnist/lapse.gif").is_file()
    assert np.load(tmp_path / "runs/mnist/activations/hidden/epoch_001.npy").shape == (200, 512)
    assert result.stdout == ""  # --quiet


def test_demo_replaces_an_earlier_run_in_its_folder(digits_run: tuple[Path, str], run_copy: Path) -> None:
    """`layerlapse demo` (here with --epochs 1): digits, every training image, replacing the run that was there."""
    from layerlapse.recipe.mapping import COMPILING

    result = runner.invoke(app, ["demo", "--out", str(run_copy), "--epochs", "1"])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert f"wrote {run_copy}/report.html: open it in any browser, offline" in result.stdout.splitlines()
    said = result.stderr.splitlines()  # after the epoch: what it waits for, the frames the worker had left first
    drawing = said.index("drawing the frames and figures, measuring the layers, writing the report")
    assert said[0].startswith("epoch 1/1: loss ")
    assert all(line.startswith("mapping snapshot ") or line == COMPILING for line in said[1:drawing]), said
    manifest = json.loads((run_copy / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["epochs_complete"] == 1
    assert manifest["config"]["dataset"] == "digits" and manifest["config"]["probe"] is None
    assert manifest["config"]["n_neighbors"] == 40 and manifest["config"]["epochs"] == 1
    assert not (run_copy / "frames/epoch_002.png").exists()  # the earlier run's third frame is gone
    assert not (run_copy / "activations/hidden/epoch_002.npy").exists()
    on_disk = {path.relative_to(run_copy).as_posix() for path in run_copy.rglob("*") if path.is_file()}
    assert set(manifest["files"]) == on_disk - {"manifest.json", ".layerlapse-lock"}
    with Image.open(run_copy / "lapse.gif") as gif:
        assert gif.n_frames == 2


# --- render ---------------------------------------------------------------------------------------------------------

RENDER_THEN_LIST_MODULES = (
    "import sys\n"
    "from layerlapse.cli import main\n"
    "sys.argv = ['layerlapse', 'render', sys.argv[1]]\n"
    "main()\n"
    "print('modules', 'torch' in sys.modules, 'umap' in sys.modules)\n"
)


def test_render_redraws_every_figure_without_training_torch_or_umap(digits_run: tuple[Path, str], run_copy: Path,
                                                                    tmp_path: Path) -> None:
    originals = {relpath: pixels(digits_run[0] / relpath) for relpath in DERIVED if relpath.endswith(".png")}
    recorded = {relpath: value for relpath, value in snapshot(run_copy).items()
                if relpath.startswith(("maps/", "activations/", "checkpoints/", "predictions/", "probe/", "test/"))}
    for relpath in DERIVED:
        (run_copy / relpath).unlink()
    result = subprocess.run([sys.executable, "-c", RENDER_THEN_LIST_MODULES, str(run_copy)], capture_output=True,
                            text=True, env=offline_env(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"redrew {len(DERIVED)} files in {run_copy}" in result.stdout
    assert result.stdout.splitlines()[-1] == "modules False False"
    for relpath in DERIVED:
        assert (run_copy / relpath).is_file(), f"{relpath} was not redrawn"
    for relpath, original in originals.items():
        assert np.array_equal(pixels(run_copy / relpath), original), f"{relpath} differs from the first drawing"
    after = snapshot(run_copy)
    assert {relpath: after[relpath] for relpath in recorded} == recorded  # maps not recomputed, nothing retrained
    manifest = json.loads((run_copy / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    for relpath in DERIVED:
        assert manifest["files"][relpath] == sha256(run_copy / relpath)
    assert temp_files(run_copy) == []


@pytest.mark.parametrize(("relpath", "damage"), [
    ("activations/hidden/epoch_001.npy", "truncate"),
    ("maps/hidden/epoch_002.npy", "alter one byte"),
    ("probe/labels.npy", "alter one byte"),
])
def test_render_refuses_a_damaged_run_and_overwrites_nothing(run_copy: Path, tmp_path: Path, relpath: str,
                                                             damage: str) -> None:
    data = (run_copy / relpath).read_bytes()
    if damage == "truncate":
        (run_copy / relpath).write_bytes(data[: len(data) // 2])
    else:
        position = len(data) - 3  # in the array's data, so the file still loads: only the checksum can tell
        (run_copy / relpath).write_bytes(data[:position] + bytes([data[position] ^ 0x10]) + data[position + 1:])
    before = snapshot(run_copy)
    result = layerlapse("render", run_copy, env=offline_env(tmp_path), cwd=tmp_path)
    assert_error(result, rf"damaged: {re.escape(relpath)} does not match its checksum")
    assert snapshot(run_copy) == before  # no figure, frame, GIF or manifest rewritten


@pytest.mark.parametrize("exists", [True, False])
def test_render_of_a_folder_without_a_manifest_is_one_error_line(tmp_path: Path, exists: bool) -> None:
    folder = tmp_path / "not-a-run"
    if exists:
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
    result = layerlapse("render", folder, env=offline_env(tmp_path), cwd=tmp_path)
    assert_error(result, rf"{re.escape(str(folder))} holds no manifest\.json")
    if exists:
        assert [path.name for path in folder.iterdir()] == ["notes.txt"]
    else:
        assert not folder.exists()


# --- bad input: one line, exit code 2, nothing half-written ---------------------------------------------------------


@pytest.mark.parametrize(("args", "pattern"), [
    (["--dataset", "mnsit"], r"unknown dataset 'mnsit': choose one of mnist, fashion-mnist, digits "
                             r"\(did you mean 'mnist'\?\)"),
    (["--epochs", "0"], r"epochs must be a whole number of at least 1"),
    (["--probe", "lots"], r"--probe must be a number of images or 'all', got 'lots'"),
    (["--probe", "10"], r"probe must be a whole number of at least 41, or 'all'"),
    (["--device", "tpu"], r"unknown device 'tpu'"),
    (["--resume", "--force"], r"--resume and --force contradict each other"),
])
def test_bad_settings_fail_before_anything_is_written(tmp_path: Path, args: list[str], pattern: str) -> None:
    out = tmp_path / "out"
    result = layerlapse("run", *args, "--out", out, env=offline_env(tmp_path), cwd=tmp_path)
    assert_error(result, pattern)
    assert not out.exists()


def test_console_script_exits_2_with_one_line_too(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = layerlapse("run", "--dataset", "mnsit", "--out", out, env=offline_env(tmp_path), cwd=tmp_path,
                        console_script=True)
    assert_error(result, r"did you mean 'mnist'")
    assert not out.exists()


def test_a_usage_error_exits_2_without_a_traceback(tmp_path: Path) -> None:
    result = layerlapse("run", "--epochs", "many", "--out", tmp_path / "out", env=offline_env(tmp_path),
                        cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2
    assert "--epochs" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("with_data_dir", [False, True])
def test_missing_mnist_names_the_folder_and_the_four_files(tmp_path: Path, with_data_dir: bool) -> None:
    env = offline_env(tmp_path)
    out = tmp_path / "out"
    data_dir = tmp_path / "data-dir"
    data_dir.mkdir()
    args = ["--data-dir", str(data_dir)] if with_data_dir else []
    result = layerlapse("run", "--dataset", "mnist", "--out", out, *args, env=env, cwd=tmp_path)
    folder = data_dir / "mnist" if with_data_dir else Path(env["XDG_CACHE_HOME"]) / "layerlapse" / "mnist"
    line = assert_error(result, rf"MNIST is not on this machine and could not be downloaded .*"
                                rf" in {re.escape(str(folder))}, or pass --data-dir / set LAYERLAPSE_DATA")
    for name in IDX_NAMES:
        assert name in line
    assert not out.exists()
    for empty in (data_dir, Path(env["LAYERLAPSE_DATA"]), Path(env["XDG_CACHE_HOME"])):
        assert list(empty.rglob("*")) == [], f"{empty} is no longer empty"  # no partial download left


@pytest.fixture(scope="module")
def mnist_contents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The four real MNIST .gz files' bytes, read via LAYERLAPSE_DATA."""
    root = os.environ.get("LAYERLAPSE_DATA")
    if not root or not all((Path(root) / "mnist" / name).is_file() for name in IDX_NAMES):
        pytest.skip("set LAYERLAPSE_DATA to a folder holding mnist/ with the four IDX files")
    return {name: (Path(root) / "mnist" / name).read_bytes() for name in IDX_NAMES}


def _rewrite(content: bytes, change) -> bytes:
    return gzip.compress(change(gzip.decompress(content)), compresslevel=1)


CORRUPTIONS = {
    "wrong magic": ("t10k-labels-idx1-ubyte.gz", lambda gz: _rewrite(gz, lambda raw: b"\x08\x03" + raw[2:]),
                    r"t10k-labels-idx1-ubyte\.gz: not an IDX file \(magic number starts 0x0803, expected 0x0000\)"),
    "truncated images": ("t10k-images-idx3-ubyte.gz", lambda gz: _rewrite(gz, lambda raw: raw[:-784]),
                         r"t10k-images-idx3-ubyte\.gz: shape 10000x28x28 needs 7840000 data bytes but the file "
                         r"holds 7839216 \(truncated\)"),
    "fewer labels": ("t10k-labels-idx1-ubyte.gz",
                     lambda gz: _rewrite(gz, lambda raw: raw[:4] + (9999).to_bytes(4, "big") + raw[8:-1]),
                     r"t10k-images-idx3-ubyte\.gz holds 10000 images but \S*t10k-labels-idx1-ubyte\.gz holds 9999 "
                     r"labels"),
    "cut-off gzip": ("train-labels-idx1-ubyte.gz", lambda gz: gz[: len(gz) // 2],
                     r"train-labels-idx1-ubyte\.gz: the gzip stream is corrupt"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_dataset_files_are_named_in_one_error_line(mnist_contents: dict[str, bytes], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, main_here,
                                                           corruption: str) -> None:
    name, corrupt, pattern = CORRUPTIONS[corruption]
    env = offline_env(tmp_path)
    for variable in ("LAYERLAPSE_DATA", "XDG_CACHE_HOME", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, env[variable])
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for file_name, content in mnist_contents.items():
        (data_dir / file_name).write_bytes(corrupt(content) if file_name == name else content)
    before = snapshot(data_dir)
    out = tmp_path / "out"
    args = ("run", "--dataset", "mnist", "--data-dir", data_dir, "--out", out)
    if corruption == "wrong magic":  # one in a fresh process, the rest in this one (5 s saved each)
        result = layerlapse(*args, env=env, cwd=tmp_path)
    else:
        result = main_here(*args)
    line = assert_error(result, pattern)
    assert str(data_dir / name) in line
    assert not out.exists()
    assert snapshot(data_dir) == before  # the bad file is neither deleted nor "repaired" by a download


def test_unknown_layer_names_the_closest_and_the_command_that_lists_them(tmp_path: Path, main_here) -> None:
    out = tmp_path / "out"
    result = main_here("run", "--dataset", "digits", "--layer", "hiden", "--out", out)
    line = assert_error(result, r"^error: unknown layer 'hiden' \(did you mean 'hidden'\?\): the model has "
                                rf"{len(LAYER_NAMES)} layers; `layerlapse layers` lists them$")
    assert len(line) < 200 + len("error: ")
    assert not out.exists()


@pytest.mark.parametrize(("where", "pattern"), [
    ("file.txt/run", r"cannot write to \S*file\.txt/run \(.*\): choose another --out"),
    ("file.txt", r"file\.txt is a file, not a folder: choose another --out"),
])
def test_an_output_folder_that_cannot_be_written(tmp_path: Path, main_here, where: str, pattern: str) -> None:
    (tmp_path / "file.txt").write_text("keep me")
    result = main_here("run", "--dataset", "digits", "--out", tmp_path / where)
    assert_error(result, pattern)
    assert (tmp_path / "file.txt").read_text() == "keep me"
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize(("flags", "pattern"), [
    ([], r"is not empty: pass --resume to continue the run in it, --force to replace it, or choose another --out"),
    (["--force"], r"is not empty and holds no layerlapse run, so --force will not delete it"),
])
def test_a_non_empty_folder_that_is_not_a_run_is_left_alone(tmp_path: Path, main_here, flags: list[str],
                                                            pattern: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = main_here("run", "--dataset", "digits", "--out", out, *flags)
    assert_error(result, pattern)
    assert snapshot(out).keys() == {"notes.txt"}
    assert (out / "notes.txt").read_text() == "mine"


def test_a_finished_run_is_not_replaced_without_force(run_copy: Path, main_here) -> None:
    before = snapshot(run_copy)
    result = main_here("run", "--dataset", "digits", "--out", run_copy)
    assert_error(result, rf"{re.escape(str(run_copy))} is not empty: pass --resume")
    assert snapshot(run_copy) == before


def test_render_with_another_method_maps_the_stored_run_again_without_torch(run_copy: Path, tmp_path: Path) -> None:
    script = RENDER_THEN_LIST_MODULES.replace("sys.argv[1]]", "sys.argv[1], '--map', 'pca']")
    result = subprocess.run([sys.executable, "-c", script, str(run_copy)], capture_output=True, text=True,
                            env=offline_env(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "modules False False"  # PCA needs neither torch nor umap
    manifest = json.loads((run_copy / "manifest.json").read_text())
    assert manifest["maps"]["method"] == "pca" and manifest["status"] == "complete"
    quality = json.loads((run_copy / "maps/hidden/quality.json").read_text())
    assert quality["method"] == "pca" and "trustworthiness" in quality["frames"]["1"]
    for relpath, digest in manifest["files"].items():
        assert sha256(run_copy / relpath) == digest, relpath


@pytest.mark.parametrize("command", ["render", "run"])
def test_an_unknown_map_method_is_one_error_line_naming_the_choices(run_copy: Path, tmp_path: Path,
                                                                   command: str) -> None:
    before = snapshot(run_copy)
    args = ("render", run_copy, "--map", "alligned") if command == "render" else \
        ("run", "--dataset", "digits", "--out", tmp_path / "new", "--map", "alligned")
    result = layerlapse(*args, env=offline_env(tmp_path), cwd=tmp_path)
    assert_error(result, r"unknown map method 'alligned': choose one of aligned, independent, aligned-umap, pca "
                         r"\(did you mean 'aligned'\?\)$")
    assert snapshot(run_copy) == before
    assert not (tmp_path / "new").exists()


# --- report ---------------------------------------------------------------------------------------------------------


REPORT_THEN_LIST_MODULES = (
    "import sys\n"
    "from layerlapse.cli import main\n"
    "sys.argv = ['layerlapse', 'report', *sys.argv[1:]]\n"
    "main()\n"
    "print('modules', 'torch' in sys.modules, 'umap' in sys.modules)\n"
)


def test_report_writes_the_page_from_the_stored_run_without_torch(run_copy: Path, tmp_path: Path) -> None:
    (run_copy / "report.html").unlink()
    recorded = {relpath: value for relpath, value in snapshot(run_copy).items() if relpath not in ("manifest.json", ".layerlapse-lock")}
    result = subprocess.run([sys.executable, "-c", REPORT_THEN_LIST_MODULES, str(run_copy)], capture_output=True,
                            text=True, env=offline_env(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.match(rf"wrote {re.escape(str(run_copy))}/report\.html \(\d+\.\d MB\): open it in any browser, offline$",
                    result.stdout.splitlines()[0])
    assert result.stdout.splitlines()[-1] == "modules False False"
    page = (run_copy / "report.html").read_text()
    assert "layerlapse-map" in page
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)  # Bokeh inlined, nothing to fetch
    manifest = json.loads((run_copy / "manifest.json").read_text())
    assert manifest["files"]["report.html"] == sha256(run_copy / "report.html") and manifest["status"] == "complete"
    after = snapshot(run_copy)
    assert {relpath: after[relpath] for relpath in recorded} == recorded  # nothing else rewritten
    assert temp_files(run_copy) == []


def test_report_elsewhere_leaves_the_run_folder_alone(run_copy: Path, tmp_path: Path, main_here) -> None:
    before = snapshot(run_copy)
    result = main_here("report", run_copy, "--out", tmp_path / "page.html", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and (tmp_path / "page.html").stat().st_size > 0
    assert snapshot(run_copy) == before


def test_report_on_a_run_being_written_says_that_a_report_elsewhere_works(run_copy: Path, tmp_path: Path,
                                                                         main_here) -> None:
    hold = ("import sys, time; from pathlib import Path; from layerlapse.store import lock; "
            "held = lock.acquire(Path(sys.argv[1])); print('held', flush=True); time.sleep(600)")
    writer = subprocess.Popen([sys.executable, "-c", hold, str(run_copy)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "held"
        assert_error(main_here("report", run_copy), rf"is being written by another process \(pid {writer.pid}, .*\): "
                                                    r"write the report outside it \(`layerlapse report RUN --out "
                                                    r"now.html`\), or wait for the run to finish$")
        result = main_here("report", run_copy, "--out", tmp_path / "now.html", "--quiet")
        assert result.returncode == 0, result.stderr
    finally:
        writer.kill()
        writer.wait()


def test_render_says_a_report_over_its_budget_in_one_line(run_copy: Path, tmp_path: Path, main_here,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from layerlapse import load_run
    from layerlapse.report import page as report

    full = report.write_report(load_run(run_copy), tmp_path / "full.html")
    budget = full.stat().st_size / 1e6 - 0.05  # a little short of what every point needs
    write_report = report.write_report
    monkeypatch.setattr(report, "write_report", lambda run, path=None, **options: write_report(
        run, path, **{**options, "size_budget_mb": budget}))
    result = main_here("render", run_copy, "--quiet")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: report.html would take ") and "subsample" in lines[0]


def test_report_over_its_budget_warns_in_one_line_and_says_so_on_the_page(run_copy: Path, tmp_path: Path,
                                                                        main_here) -> None:
    full = main_here("report", run_copy, "--out", tmp_path / "full.html", "--quiet")
    assert full.returncode == 0 and full.stderr == ""
    budget = (tmp_path / "full.html").stat().st_size / 1e6 - 0.05  # a little short of what every point needs
    result = main_here("report", run_copy, "--out", tmp_path / "small.html", "--budget", f"{budget:.3f}", "--quiet")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: report.html would take ") and "subsample" in lines[0]
    assert (tmp_path / "small.html").stat().st_size <= budget * 1e6
    assert "probe points" in (tmp_path / "small.html").read_text()


@pytest.mark.parametrize(("args", "pattern"), [
    (["--budget", "0"], r"size_budget_mb must be a positive number of megabytes, got 0\.0$"),
    (["--budget", "-3"], r"size_budget_mb must be a positive number of megabytes, got -3\.0$"),
    (["--layer", "hiden"], r"^error: layer 'hiden' was not recorded in .* \(did you mean 'hidden'\?\): it holds hidden$"),
])
def test_report_bad_settings_are_one_error_line(run_copy: Path, tmp_path: Path, args: list[str], pattern: str) -> None:
    before = snapshot(run_copy)
    assert_error(layerlapse("report", run_copy, *args, env=offline_env(tmp_path), cwd=tmp_path), pattern)
    assert snapshot(run_copy) == before


def test_report_refuses_a_damaged_run(run_copy: Path, tmp_path: Path) -> None:
    path = run_copy / "maps/hidden/epoch_001.npy"
    path.write_bytes(path.read_bytes()[:-8])
    before = snapshot(run_copy)
    result = layerlapse("report", run_copy, env=offline_env(tmp_path), cwd=tmp_path)
    assert_error(result, r"maps/hidden/epoch_001\.npy")
    assert snapshot(run_copy) == before


def test_a_sigterm_that_lands_in_a_finalizer_still_stops_the_run(tmp_path: Path) -> None:
    """Python swallows a KeyboardInterrupt raised inside a finalizer ("Exception ignored in: <finalize object>"): a
    run sent SIGTERM while a snapshot's memory map was let go went on to the end (seen in CI). The interrupt is
    raised again once the finalizer has returned."""
    script = tmp_path / "finalizer.py"
    script.write_text(textwrap.dedent("""
        import os, signal, time, weakref
        from layerlapse import cli

        cli._install_interrupts()

        class Held:
            pass

        def let_go():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10 ** 6):  # the handler runs here, inside the finalizer
                pass

        held = Held()
        weakref.finalize(held, let_go)
        try:
            del held
            for _ in range(200):
                time.sleep(0.01)
            print("went on")
        except KeyboardInterrupt:
            print("interrupted")
    """))
    # SIGINT ignored, as in a job started in the background (CI's): the interrupt must not depend on it
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert result.stdout.strip() == "interrupted" and "Exception ignored" not in result.stderr, result.stderr
