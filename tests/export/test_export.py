"""Tests for layerlapse.export.tensorboard and `layerlapse export`: the files are read back by TensorBoard's own projector plugin.

The oracle is the plugin itself (tensorboard is a development dependency): `ProjectorServer` builds it on the export
folder, as `tensorboard --logdir FOLDER` does, and asks it through the HTTP routes the projector page calls, so the
config is parsed, the tensor read and the metadata counted by the plugin's code, not by a copy of it. The page's own
limits (8192-pixel sprites, sprites per row = width / single_image_dim) come from its JavaScript bundle and are
checked here by hand.
"""

from __future__ import annotations

import io
import json
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error, assert_runs_clean
from PIL import Image

from layerlapse.export import tensorboard as export
from layerlapse.config import RunConfig
from layerlapse.errors import ConfigError, RunFolderError
from layerlapse.errors import ExportWarning
from layerlapse.export.tensorboard import export_tensorboard
from layerlapse.store.layout import epoch_file
from layerlapse.store.run import RunFolder, load_run

PAGE_ROWS = 100_000  # the num_rows the projector page asks the plugin for
PAGE_SPRITE_MAX_PX = 8192  # the page refuses a larger sprite
SCRIPT_NAME = "</script><img src=x onerror=alert(1)>"
BROKEN_NAME = "tab\there\nnew line\r\nand\u2028more"


# --- the projector plugin as the oracle -----------------------------------------------------------------------------


class ProjectorServer:
    """TensorBoard's projector plugin serving `logdir`, asked through the routes the projector page calls."""

    def __init__(self, logdir: Path) -> None:
        from tensorboard.plugins import base_plugin
        from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin

        class NoEventFiles:  # what TensorBoard's data provider reports for a folder without event files
            def list_runs(self, ctx: object, *, experiment_id: str) -> list:
                return []

        plugin = ProjectorPlugin(base_plugin.TBContext(logdir=str(logdir), data_provider=NoEventFiles()))
        self.routes = plugin.get_plugin_apps()

    def get(self, route: str, **query: object) -> bytes:
        from werkzeug.test import Client

        response = Client(self.routes[route]).get(route, query_string={"run": ".", **query})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data()

    def config(self) -> dict:
        """The embedding the page sees (the plugin's JSON of its parsed ProjectorConfig)."""
        runs = json.loads(self.get("/runs"))
        assert runs == ["."]
        (embedding,) = json.loads(self.get("/info"))["embeddings"]
        return embedding

    def tensor(self, name: str) -> np.ndarray:
        """The tensor as the page receives it: float32 bytes, shaped by the config's tensorShape."""
        shape = self.config()["tensorShape"]
        return np.frombuffer(self.get("/tensor", name=name, num_rows=PAGE_ROWS), dtype=np.float32).reshape(shape)

    def metadata_rows(self, name: str) -> list[list[str]]:
        """The metadata as the page parses it: lines split at newlines, blank lines skipped, cells split at tabs."""
        text = self.get("/metadata", name=name, num_rows=PAGE_ROWS).decode("utf-8")
        return [line.split("\t") for line in text.split("\n") if line.strip()]

    def sprite(self, name: str) -> Image.Image:
        data = self.get("/sprite_image", name=name)
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG"
        return image


def assert_sprite_fits_the_page(sprite: Image.Image, thumbnail: list[int], n_points: int) -> int:
    """The page's rules for a sprite: at most 8192 pixels a side, a whole number of thumbnails across and down,
    square (its picking code takes sprites per row from sprites per column), a cell for every point. Returns the
    thumbnails per row."""
    width, height = sprite.size
    assert max(width, height) <= PAGE_SPRITE_MAX_PX
    assert width % thumbnail[0] == 0 and height % thumbnail[1] == 0
    per_row, per_column = width // thumbnail[0], height // thumbnail[1]
    assert per_row == per_column
    assert per_row * per_column >= n_points
    return per_row


def sprite_cell(sprite: Image.Image, thumbnail: list[int], per_row: int, index: int) -> np.ndarray:
    row, column = divmod(index, per_row)
    width, height = thumbnail
    return np.asarray(sprite)[row * height:(row + 1) * height, column * width:(column + 1) * width]


# --- runs -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run: the reference network trained 2 epochs on the bundled digits, 300 probe images mapped."""
    from layerlapse import run_experiment

    folder = tmp_path_factory.mktemp("digits") / "run"
    run_experiment(RunConfig(dataset="digits", epochs=2, probe=300, n_neighbors=15), folder, force=True,
                   show_progress=False)
    return folder


@pytest.fixture(scope="module")
def exported(digits_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tensorboard(load_run(digits_run), tmp_path_factory.mktemp("export") / "epoch_002", epoch=2)


def synthetic_run(folder: Path, *, n_points: int = 50, class_names: list[str] | None = None,
                  image_size: tuple[int, int] | None = (28, 28), activations: np.ndarray | None = None,
                  epochs: int = 1) -> RunFolder:
    """A run folder written through RunFolder as a user's own loop would, without training: layers hidden (16
    features, or `activations`) and end (10), predictions, probe images of `image_size` (None: no images)."""
    class_names = class_names or [str(digit) for digit in range(10)]
    rng = np.random.default_rng(0)
    run = RunFolder.create(folder, RunConfig(dataset="mnist", epochs=epochs, layers=("hidden", "end"), probe=None),
                           {"name": "synthetic", "class_names": class_names})
    labels = np.arange(n_points) % len(class_names)
    images = None if image_size is None else rng.integers(0, 256, (n_points, *image_size), dtype=np.uint8)
    run.write_probe(labels, images)
    for epoch in range(epochs + 1):
        hidden = rng.normal(size=(n_points, 16)) if activations is None else activations
        run.write_array(f"activations/hidden/{epoch_file(epoch)}", np.asarray(hidden, dtype=np.float16))
        run.write_array(f"activations/end/{epoch_file(epoch)}", rng.normal(size=(n_points, 10)).astype(np.float16))
        run.write_array(f"predictions/{epoch_file(epoch)}", rng.dirichlet(np.ones(len(class_names)), n_points))
        run.record_epoch(epoch, None)
    run.commit("complete")
    return run


# --- a real run, read back by the plugin ----------------------------------------------------------------------------


def test_the_plugin_serves_the_layers_activations_exactly(digits_run: Path, exported: Path) -> None:
    server = ProjectorServer(exported)
    embedding = server.config()
    assert embedding["tensorName"] == "hidden_epoch_002"
    assert embedding["tensorShape"] == [300, 512]  # the digits network's hidden layer, 300 probe images
    served = server.tensor("hidden_epoch_002")
    recorded = load_run(digits_run).activations("hidden", 2)
    np.testing.assert_array_equal(served, recorded.astype(np.float32))  # every float16 value, exactly


def test_the_metadata_has_a_header_and_a_row_per_point(digits_run: Path, exported: Path) -> None:
    run = load_run(digits_run)
    rows = ProjectorServer(exported).metadata_rows("hidden_epoch_002")
    assert len(rows) == 300 + 1  # the plugin's count: the points and the header
    header, cells = rows[0], np.array(rows[1:])
    assert header == ["label", "class", "predicted", "confidence", "correct", "map_x", "map_y"]
    assert cells.shape == (300, 7)
    labels = run.read_array("probe/labels.npy")
    probabilities = run.predictions(2)
    names = run.manifest["dataset"]["class_names"]
    assert cells[:, 0].astype(int).tolist() == labels.tolist()
    assert cells[:, 1].tolist() == [names[label] for label in labels]
    assert cells[:, 2].tolist() == [names[index] for index in probabilities.argmax(axis=1)]
    np.testing.assert_allclose(cells[:, 3].astype(float), probabilities.max(axis=1), atol=5e-5)
    assert cells[:, 4].tolist() == ["yes" if right else "no" for right in probabilities.argmax(axis=1) == labels]
    np.testing.assert_allclose(cells[:, 5:].astype(float), run.read_array("maps/hidden/epoch_002.npy"), rtol=1e-5)


def test_the_sprite_fits_the_page_and_holds_each_probe_image_in_its_cell(digits_run: Path, exported: Path) -> None:
    server = ProjectorServer(exported)
    thumbnail = server.config()["sprite"]["singleImageDim"]
    assert thumbnail == [8, 8]  # the digits' own size: 300 of them fit without shrinking
    sprite = server.sprite("hidden_epoch_002")
    per_row = assert_sprite_fits_the_page(sprite, thumbnail, 300)
    assert per_row == 18  # ceil(sqrt(300))
    images = load_run(digits_run).read_array("probe/images.npy")
    for index in range(300):
        np.testing.assert_array_equal(sprite_cell(sprite, thumbnail, per_row, index), images[index])


def test_every_epoch_and_the_default_layer_reach_the_export(digits_run: Path, tmp_path: Path) -> None:
    run = load_run(digits_run)
    for epoch in range(3):
        server = ProjectorServer(export_tensorboard(run, tmp_path / epoch_file(epoch, ""), epoch=epoch))
        np.testing.assert_array_equal(server.tensor(f"hidden_epoch_{epoch:03d}"),
                                      run.activations("hidden", epoch).astype(np.float32))


def test_every_snapshot_goes_into_one_logdir_the_plugin_serves(digits_run: Path, tmp_path: Path, main_here) -> None:
    result = main_here("export", "--tensorboard", digits_run)
    assert result.returncode == 0, result.stderr
    folder = digits_run / "tensorboard" / "hidden"
    assert f"at every snapshot to {folder}" in result.stdout
    server = ProjectorServer(folder)
    embeddings = json.loads(server.get("/info"))["embeddings"]
    assert [embedding["tensorName"] for embedding in embeddings] == [f"hidden_epoch_{e:03d}" for e in range(3)]
    assert {tuple(embedding["sprite"]["singleImageDim"]) for embedding in embeddings} == {(8, 8)}  # one sprite
    run = load_run(digits_run)
    for epoch in range(3):
        name = f"hidden_epoch_{epoch:03d}"
        served = np.frombuffer(server.get("/tensor", name=name, num_rows=PAGE_ROWS), dtype=np.float32)
        np.testing.assert_array_equal(served.reshape(300, -1), run.activations("hidden", epoch).astype(np.float32))
        rows = server.metadata_rows(name)
        assert len(rows) == 301 and rows[1][2] == str(run.class_names[run.predictions(epoch)[0].argmax()])
    assert sorted(path.name for path in folder.iterdir()) == ["epoch_000", "epoch_001", "epoch_002",
                                                              "projector_config.pbtxt", "sprite.png"]


# --- the parts, on runs written without training --------------------------------------------------------------------


def test_layer_chooses_the_tensor(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "run")
    server = ProjectorServer(export_tensorboard(run, tmp_path / "end", epoch=1, layer="end"))
    assert server.config()["tensorName"] == "end_epoch_001"
    np.testing.assert_array_equal(server.tensor("end_epoch_001"), run.activations("end", 1).astype(np.float32))


def test_activations_that_decode_as_text_still_read_back(tmp_path: Path) -> None:
    # all-zero float32 bytes are valid UTF-8: the plugin, which tries text first, would misread them as binary
    run = synthetic_run(tmp_path / "run", activations=np.zeros((50, 16)))
    server = ProjectorServer(export_tensorboard(run, tmp_path / "tb", epoch=0))
    np.testing.assert_array_equal(server.tensor("hidden_epoch_000"), np.zeros((50, 16), dtype=np.float32))


def test_hostile_class_names_land_as_one_clean_cell(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "run", class_names=[SCRIPT_NAME, BROKEN_NAME, "plain"], image_size=None)
    rows = ProjectorServer(export_tensorboard(run, tmp_path / "tb", epoch=1)).metadata_rows("hidden_epoch_001")
    assert len(rows) == 50 + 1
    assert {len(row) for row in rows} == {5}  # label, class, predicted, confidence, correct: no map in this run
    classes = [row[1] for row in rows[1:]]
    assert classes[0] == SCRIPT_NAME  # TSV is not HTML: the name is kept as it is, the page shows it as text
    assert classes[1] == "tab here new line  and more"
    assert classes[2] == "plain"
    assert {row[2] for row in rows[1:]} <= {SCRIPT_NAME, "tab here new line  and more", "plain"}


def test_tsv_cells_and_the_header_rule() -> None:
    assert export.tsv_cell("a\tb\nc\rd\x00e\x85f\u2029g") == "a b c d e f g"
    assert export.tsv_cell(3) == "3"
    assert export.metadata_tsv({"label": ["1", "2"]}) == "1\n2\n"  # one column: no header, as the plugin expects
    assert export.metadata_tsv({"a": ["1", "2"], "b\tc": ["x\ny", "z"]}) == "a\tb c\n1\tx y\n2\tz\n"


@pytest.mark.parametrize(
    ("n_points", "image_size", "expected"),
    [(300, (8, 8), (8, 8)), (60_000, (28, 28), (28, 28)), (100_000, (28, 28), (25, 25)),
     (100_000, (28, 14), (12, 25)), (10_000_000, (28, 28), None), (10_000_000, (4, 4), None)],
)
def test_thumbnails_shrink_to_fit_the_sprite_limit(n_points: int, image_size: tuple[int, int],
                                                   expected: tuple[int, int] | None) -> None:
    thumbnail = export.sprite_thumbnail_size(n_points, image_size)
    assert thumbnail == expected
    if thumbnail is not None:
        assert math.ceil(math.sqrt(n_points)) * max(thumbnail) <= PAGE_SPRITE_MAX_PX


@pytest.mark.parametrize(("n_points", "thumbnail"), [(36, [10, 10]), (50, [8, 8])])
def test_a_sprite_too_big_for_the_limit_gets_smaller_thumbnails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  n_points: int, thumbnail: list[int]) -> None:
    monkeypatch.setattr(export, "SPRITE_MAX_PX", 64)  # 28-pixel images: 7 or 8 a side need 224 pixels and more
    run = synthetic_run(tmp_path / "run", n_points=n_points)
    server = ProjectorServer(export_tensorboard(run, tmp_path / "tb", epoch=1))
    assert server.config()["sprite"]["singleImageDim"] == thumbnail
    sprite = server.sprite("hidden_epoch_001")
    assert max(sprite.size) <= 64
    assert_sprite_fits_the_page(sprite, thumbnail, n_points)


def test_a_sprite_that_cannot_fit_is_left_out_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = synthetic_run(tmp_path / "run", n_points=100)
    folder = export_tensorboard(run, tmp_path / "tb", epoch=1)
    assert (folder / "sprite.png").is_file()
    monkeypatch.setattr(export, "SPRITE_MAX_PX", 64)  # 10 a side: 6-pixel thumbnails, below the 8-pixel minimum
    with pytest.warns(ExportWarning, match=r"^no sprite: 100 thumbnails of 8 pixels or more do not fit in the "
                                           r"projector's 64 × 64-pixel sprite; every point is exported"):
        export_tensorboard(run, folder, epoch=1)
    assert not (folder / "sprite.png").exists()  # the earlier export's sprite is gone with it
    server = ProjectorServer(folder)
    assert "sprite" not in server.config()
    assert server.tensor("hidden_epoch_001").shape == (100, 16)  # no point left out
    assert len(server.metadata_rows("hidden_epoch_001")) == 100 + 1


def test_what_the_page_cannot_show_is_exported_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    activations = np.random.default_rng(1).normal(size=(50, 16))
    activations[[3, 7]] = np.nan
    run = synthetic_run(tmp_path / "run", activations=activations)
    monkeypatch.setattr(export, "PROJECTOR_MAX_POINTS", 40)
    with pytest.warns(ExportWarning) as caught:
        folder = export_tensorboard(run, tmp_path / "tb", epoch=0)
    assert [str(warning.message) for warning in caught] == [
        "2 of 50 points have NaN or infinite activations; the projector's PCA, t-SNE and UMAP need finite values: "
        "export an epoch before the network diverged",
        "the projector page shows only the first 40 of the 50 points written",
    ]
    assert all(warning.filename == __file__ for warning in caught)  # they point at the caller's line
    served = ProjectorServer(folder).tensor("hidden_epoch_000")
    np.testing.assert_array_equal(served, run.activations("hidden", 0).astype(np.float32))


def test_images_the_sprite_cannot_use_leave_it_out_with_a_warning(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "run", image_size=None)
    run.write_array("probe/images.npy", np.zeros((50, 28, 28, 3), dtype=np.uint8))
    run.commit()
    with pytest.warns(ExportWarning, match=r"^no sprite: probe/images.npy holds uint8 images of shape \(28, 28, 3\)"):
        folder = export_tensorboard(run, tmp_path / "tb", epoch=1)
    assert "sprite" not in ProjectorServer(folder).config()


@pytest.mark.parametrize("stored", [
    np.random.default_rng(1).random((50, 28, 28)),  # floats in [0, 1], as a user's own loop may store them
    np.random.default_rng(1).integers(0, 256, (50, 28, 28, 1), dtype=np.uint8),  # a trailing channel of one
])
def test_the_sprite_shows_the_pixels_the_report_shows(tmp_path: Path, stored: np.ndarray) -> None:
    from layerlapse.store.images import stored_pixels

    run = synthetic_run(tmp_path / "run", image_size=None)
    run.write_array("probe/images.npy", stored)
    run.commit()
    server = ProjectorServer(export_tensorboard(run, tmp_path / "tb", epoch=1))
    thumbnail = server.config()["sprite"]["singleImageDim"]
    sprite = server.sprite("hidden_epoch_001")
    per_row = assert_sprite_fits_the_page(sprite, thumbnail, 50)
    for index in (0, 17, 49):
        np.testing.assert_array_equal(sprite_cell(sprite, thumbnail, per_row, index), stored_pixels(stored)[index])


@pytest.mark.parametrize("thumbnail", [(8, 8), (12, 25), None])
def test_the_config_written_by_hand_is_the_one_tensorboard_writes(monkeypatch: pytest.MonkeyPatch,
                                                                  thumbnail: tuple[int, int] | None) -> None:
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    embedding = export.Embedding("layer.name-1_epoch_007", (300, 512), thumbnail)
    with_tensorboard = export.projector_config_text(embedding)
    monkeypatch.setitem(sys.modules, "tensorboard.plugins.projector.projector_config_pb2", None)  # not installed
    by_hand = export.projector_config_text(embedding)
    assert by_hand == with_tensorboard
    parsed = text_format.Parse(by_hand, ProjectorConfig())
    assert list(parsed.embeddings[0].tensor_shape) == [300, 512]
    assert list(parsed.embeddings[0].sprite.single_image_dim) == list(thumbnail or [])


def test_importing_export_loads_neither_torch_nor_tensorboard() -> None:
    script = textwrap.dedent("""
        import sys
        import layerlapse.export.tensorboard
        assert "torch" not in sys.modules and "tensorboard" not in sys.modules, sorted(sys.modules)
        print("clean")
    """)
    assert_runs_clean(script, export.__file__)


# --- bad input: one line, naming the problem and the fix ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [({"epoch": 3}, ConfigError, r"^epoch 3 is not in run folder .*, which holds epochs 0 to 2: pass --epoch"),
     ({"epoch": -1}, ConfigError, r"^epoch -1 is not in run folder .*, which holds epochs 0 to 2"),
     ({"epoch": True}, ConfigError, r"^epoch True is not in run folder"),
     ({"epoch": 1, "layer": "hiden"}, ConfigError,
      r"^layer 'hiden' was not recorded in .* \(did you mean 'hidden'\?\): it holds hidden$")],
)
def test_bad_input_is_one_line_with_its_fix(digits_run: Path, tmp_path: Path, options: dict, error: type,
                                            pattern: str) -> None:
    with pytest.raises(error, match=pattern) as raised:
        export_tensorboard(load_run(digits_run), tmp_path / "tb", **options)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "tb").exists()


def test_a_run_without_the_epochs_activations(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "run", epochs=2)
    run.forget("activations/hidden/epoch_001.npy")
    run.commit()
    with pytest.raises(RunFolderError, match=r"^run folder .* has no activations of layer 'hidden' at epoch 1 "
                                             r"\(activations/hidden/epoch_001\.npy\); it has them for epochs 0, 2: "
                                             r"pass --epoch with one of those, or record the run again with --force$"):
        export_tensorboard(run, tmp_path / "tb", epoch=1)


def test_a_run_with_no_complete_epoch(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "run", RunConfig(dataset="mnist", probe=None), {"class_names": ["a", "b"]})
    with pytest.raises(RunFolderError, match=r"^run folder .* has no complete epoch to export: record one first"):
        export_tensorboard(run, tmp_path / "tb", epoch=0)


def test_a_layer_the_page_would_leave_out(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "run", activations=np.ones((50, 1)))
    with pytest.raises(ConfigError, match=r"^layer 'hidden' gives 50 points of 1 features at this epoch; the "
                                          r"projector shows only at least 2 of each: choose another layer$"):
        export_tensorboard(run, tmp_path / "tb", epoch=0)


def test_a_damaged_run_names_the_file(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "run")
    run.write_array("probe/labels.npy", np.zeros(49, dtype=np.int64))
    run.commit()
    with pytest.raises(RunFolderError, match=r"is damaged: probe/labels\.npy has 49 rows for 50 probe images"):
        export_tensorboard(run, tmp_path / "tb", epoch=1)


# --- the command ----------------------------------------------------------------------------------------------------


def test_cli_export_writes_into_the_run_and_says_how_to_view_it(digits_run: Path, main_here) -> None:
    result = main_here("export", "--tensorboard", digits_run, "--epoch", "1")
    assert result.returncode == 0, result.stderr
    folder = digits_run / "tensorboard" / "epoch_001"
    assert result.stdout == (f"wrote the projector files of layer hidden at epoch 1 to {folder}\n"
                             f"view them: tensorboard --logdir {folder}\n")
    assert result.stderr == ""
    server = ProjectorServer(folder)
    np.testing.assert_array_equal(server.tensor("hidden_epoch_001"),
                                  load_run(digits_run).activations("hidden", 1).astype(np.float32))
    load_run(digits_run)  # the run folder still verifies


def test_cli_export_layer_and_out(tmp_path: Path, main_here) -> None:
    synthetic_run(tmp_path / "run")
    out = tmp_path / "my tb"
    result = main_here("export", "--tensorboard", tmp_path / "run", "--epoch", "0", "--layer", "end", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == f"view them: tensorboard --logdir '{out}'"  # quoted for the shell
    assert ProjectorServer(out).config()["tensorShape"] == [50, 10]


def test_cli_export_prints_warnings_as_one_line_each(tmp_path: Path, main_here,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    synthetic_run(tmp_path / "run", n_points=100)
    monkeypatch.setattr(export, "SPRITE_MAX_PX", 64)
    result = main_here("export", "--tensorboard", tmp_path / "run", "--epoch", "1")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: no sprite: 100 thumbnails of 8 pixels or more do not fit in the projector's 64 × 64-pixel sprite; "
        "every point is exported, without its image"]


@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [(["--epoch", "1"], r"^error: say which format to export: --tensorboard"),
     (["--tensorboard", "--parquet", "--epoch", "1"], r"^error: say which format to export: .* one at a time"),
     (["--parquet", "--layer", "end"], r"^error: layer 'end' was not recorded in .*: it holds hidden$"),
     (["--tensorboard", "--epoch", "5"], r"epoch 5 is not in run folder .*, which holds epochs 0 to 2"),
     (["--tensorboard", "--epoch", "1", "--layer", "end"], r"layer 'end' was not recorded"),
     (["--tensorboard", "--epoch", "1", "{not_a_run}"], r"holds no manifest\.json")],
)
def test_cli_export_errors_are_one_line(digits_run: Path, tmp_path: Path, main_here, arguments: list[str],
                                        pattern: str) -> None:
    if "{not_a_run}" in arguments:
        arguments = [str(tmp_path) if argument == "{not_a_run}" else argument for argument in arguments]
    else:
        arguments = [*arguments, str(digits_run)]
    assert_error(main_here("export", *arguments), pattern)
