"""Tests for layerlapse.render: real files in tmp_path, read back with Pillow."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_runs_clean
from PIL import Image

from layerlapse import atomic, render
from layerlapse.errors import ConfigError

DIGITS = [str(digit) for digit in range(10)]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
TAB10_RED = (214, 39, 40)  # tab10's colour for class 3
GOLD = (255, 215, 0)


def clustered_map(n_points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n_points)
    centres = rng.normal(0.0, 8.0, (10, 2))
    return centres[labels] + rng.normal(0.0, 1.0, (n_points, 2)), labels


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def count_colour(path: Path, rgb: tuple[int, int, int], box: tuple[int, int, int, int] | None = None) -> int:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB").crop(box) if box else image.convert("RGB"))
    return int((pixels == np.array(rgb, dtype=np.uint8)).all(axis=-1).sum())


def map_box(size_px: tuple[int, int] = (800, 704)) -> tuple[int, int, int, int]:
    """The pixels inside the map axes, leaving out the colour bar (which shows every class colour)."""
    left, bottom, width, height = render._MAP_RECT
    return (int(left * size_px[0]) + 2, int((1 - bottom - height) * size_px[1]) + 2,
            int((left + width) * size_px[0]) - 2, int((1 - bottom) * size_px[1]) - 2)


# --- frames ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_points", "names", "caption"),
    [(1, DIGITS, None), (300, FASHION, "hidden · UMAP"), (20_000, DIGITS, "a caption\nover two lines")],
)
def test_frame_is_exactly_size_px_whatever_is_drawn(tmp_path: Path, n_points: int, names: list[str],
                                                     caption: str | None) -> None:
    xy, labels = clustered_map(n_points)
    written = render.draw_frame(xy, labels, names, tmp_path / "frames" / "epoch_000.png", title="Epoch 0",
                                caption=caption)
    assert written == tmp_path / "frames" / "epoch_000.png"
    assert png_size(written) == (800, 704)


def test_frame_honours_other_sizes(tmp_path: Path) -> None:
    xy, labels = clustered_map(200)
    for size_px in [(640, 480), (1280, 720), (1024, 1024)]:
        path = render.draw_frame(xy, labels, DIGITS, tmp_path / f"{size_px}.png", title="Epoch 1", size_px=size_px)
        assert png_size(path) == size_px


@pytest.mark.parametrize("size_px", [(800, 700), (0, 704), (800.5, 704)])
def test_frame_rejects_sizes_video_cannot_take(tmp_path: Path, size_px: tuple[int, int]) -> None:
    xy, labels = clustered_map(10)
    with pytest.raises(ConfigError, match=r"size_px must be two positive multiples of 16"):
        render.draw_frame(xy, labels, DIGITS, tmp_path / "frame.png", title="Epoch 0", size_px=size_px)
    assert not (tmp_path / "frame.png").exists()


def test_frame_rejects_points_that_are_not_two_dimensional(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"xy must have shape \(n, 2\), got \(5, 3\)"):
        render.draw_frame(np.zeros((5, 3)), np.zeros(5), DIGITS, tmp_path / "frame.png", title="Epoch 0")
    with pytest.raises(ValueError, match=r"labels must have shape \(5,\)"):
        render.draw_frame(np.zeros((5, 2)), np.zeros(4), DIGITS, tmp_path / "frame.png", title="Epoch 0")


def test_frame_skips_non_finite_rows(tmp_path: Path) -> None:
    xy, labels = clustered_map(500)
    xy[:50] = np.nan
    xy[50:60, 1] = np.inf
    assert png_size(render.draw_frame(xy, labels, DIGITS, tmp_path / "some.png", title="Epoch 2")) == (800, 704)
    xy[:] = np.nan  # a diverged network: nothing to place, the frame still keeps the GIF's rhythm
    assert png_size(render.draw_frame(xy, labels, DIGITS, tmp_path / "none.png", title="Epoch 3")) == (800, 704)


def test_frame_colours_each_class_with_its_tab10_colour(tmp_path: Path) -> None:
    xy, _ = clustered_map(50)
    only_threes = np.full(50, 3)
    path = render.draw_frame(xy, only_threes, DIGITS, tmp_path / "threes.png", title="Epoch 0")
    assert count_colour(path, TAB10_RED, map_box()) > 100
    path = render.draw_frame(xy, np.full(50, 2), DIGITS, tmp_path / "twos.png", title="Epoch 0")
    assert count_colour(path, TAB10_RED, map_box()) == 0


def test_frame_point_size_reaches_the_scatter(tmp_path: Path) -> None:
    xy, _ = clustered_map(50)
    threes = np.full(50, 3)
    small = render.draw_frame(xy, threes, DIGITS, tmp_path / "small.png", title="Epoch 0", point_size=2)
    large = render.draw_frame(xy, threes, DIGITS, tmp_path / "large.png", title="Epoch 0", point_size=200)
    assert count_colour(large, TAB10_RED, map_box()) > 5 * count_colour(small, TAB10_RED, map_box())


# --- samples, curves, train/test, confusion -------------------------------------------------------------------------


def test_samples_fill_a_ten_by_ten_grid_from_a_seeded_choice(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = (rng.random((300, 28, 28)) * 255).astype(np.uint8)
    labels = rng.integers(0, 10, 300)
    first = render.draw_samples(images, labels, DIGITS, tmp_path / "a" / "samples.png", seed=0)
    again = render.draw_samples(images, labels, DIGITS, tmp_path / "b" / "samples.png", seed=0)
    other = render.draw_samples(images, labels, DIGITS, tmp_path / "c" / "samples.png", seed=1)
    assert png_size(first) == (960, 1120)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_samples_with_fewer_images_than_cells(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    images = rng.random((23, 28, 28, 1))  # floats in [0, 1], with a channel axis
    path = render.draw_samples(images, rng.integers(0, 10, 23), FASHION, tmp_path / "samples.png")
    assert png_size(path) == (960, 3 * 112)  # three rows hold 23 images
    assert png_size(render.draw_samples(images[:1], np.array([9]), FASHION, tmp_path / "one.png", grid=4)) == (384, 112)


def test_samples_reject_an_empty_set(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one image"):
        render.draw_samples(np.zeros((0, 28, 28)), np.zeros(0), DIGITS, tmp_path / "samples.png")


def history_rows(epochs: int) -> list[dict[str, float]]:
    return [
        {"loss": 1 / epoch, "acc": 1 - 0.5 / epoch, "val_loss": 1.1 / epoch, "val_acc": 1 - 0.6 / epoch,
         "seconds": 3.0, "epoch": epoch}
        for epoch in range(1, epochs + 1)
    ]


@pytest.mark.parametrize("epochs", [1, 12])
def test_curves(tmp_path: Path, epochs: int) -> None:
    assert png_size(render.draw_curves(history_rows(epochs), tmp_path / "figures" / "curves.png")) == (1280, 512)


def test_curves_without_validation_and_without_history(tmp_path: Path) -> None:
    rows = [{"loss": 0.5, "acc": 0.8}, {"loss": 0.3, "acc": 0.9}]
    assert png_size(render.draw_curves(rows, tmp_path / "curves.png")) == (1280, 512)
    with pytest.raises(ValueError, match="history is empty"):
        render.draw_curves([], tmp_path / "empty.png")


def test_train_test_draws_gold_stars_over_the_map(tmp_path: Path) -> None:
    train_xy, train_labels = clustered_map(3000)
    test_xy, _ = clustered_map(100, seed=5)
    test_xy[0] = np.nan
    path = render.draw_train_test(train_xy, train_labels, test_xy, DIGITS, tmp_path / "train_test.png",
                                  title="Test set on the final training map")
    assert png_size(path) == (800, 704)
    assert count_colour(path, GOLD, map_box()) > 200


def test_confusion_figure(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    true = rng.integers(0, 10, 2000)
    predicted = np.where(rng.random(2000) < 0.9, true, rng.integers(0, 10, 2000))
    matrix = render.confusion_matrix(true, predicted, 10)
    for names in (DIGITS, FASHION):
        path = render.draw_confusion(matrix, names, tmp_path / f"confusion_{len(names[0])}.png", title="Confusion")
        assert png_size(path) == (800, 704)
    with pytest.raises(ValueError, match=r"matrix must have shape \(3, 3\)"):
        render.draw_confusion(matrix, ["a", "b", "c"], tmp_path / "bad.png", title="Confusion")


# --- numbers and JSON -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_classes", "n_samples", "seed"), [(10, 5000, 0), (3, 40, 1), (7, 1, 2)])
def test_confusion_matrix_matches_sklearn(n_classes: int, n_samples: int, seed: int) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    true = rng.integers(0, n_classes, n_samples)
    predicted = rng.integers(0, n_classes, n_samples)
    ours = render.confusion_matrix(true, predicted, n_classes)
    oracle = sklearn_metrics.confusion_matrix(true, predicted, labels=list(range(n_classes)))
    assert ours.dtype == np.int64
    assert ours.shape == (n_classes, n_classes)
    np.testing.assert_array_equal(ours, oracle)


def test_confusion_matrix_rejects_labels_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"predicted labels must lie in \[0, 3\), got \[0, 3\]"):
        render.confusion_matrix(np.array([0, 1, 2]), np.array([0, 3, 2]), 3)
    with pytest.raises(ValueError, match="same length"):
        render.confusion_matrix(np.array([0, 1]), np.array([0]), 3)


def test_write_json_round_trips_numpy_values(tmp_path: Path) -> None:
    metrics = {"test_accuracy": np.float32(0.9915), "count": np.int64(10_000), "per_class": np.arange(3),
               "trustworthiness": float("nan"), "run": tmp_path, 7: "seven"}
    path = render.write_json(metrics, tmp_path / "deep" / "metrics.json")
    assert path.read_text(encoding="utf-8").endswith("}\n")
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert loaded == {"test_accuracy": pytest.approx(0.9915), "count": 10_000, "per_class": [0, 1, 2],
                      "trustworthiness": None, "run": str(tmp_path), "7": "seven"}


# --- the GIF --------------------------------------------------------------------------------------------------------


def draw_frames(folder: Path, count: int, size_px: tuple[int, int] = (800, 704)) -> list[Path]:
    xy, labels = clustered_map(400)
    # Distinct titles: Pillow folds identical consecutive frames into one.
    return [render.draw_frame(xy * (1 + epoch / 4), labels, DIGITS, folder / f"epoch_{epoch:03d}.png",
                              title=f"Epoch {epoch}", size_px=size_px) for epoch in range(count)]


def test_gif_loops_forever_at_500_ms_a_frame(tmp_path: Path) -> None:
    frames = draw_frames(tmp_path / "frames", 4)
    path = render.write_gif(frames, tmp_path / "lapse.gif")
    assert path == tmp_path / "lapse.gif"
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.size == (800, 704)
        assert gif.n_frames == 4
        assert gif.info["duration"] == 500
        assert gif.info["loop"] == 0
    assert path.stat().st_size < 1_000_000


def test_gif_colours_do_not_drift(tmp_path: Path) -> None:
    frames = draw_frames(tmp_path / "frames", 3)
    path = render.write_gif(frames, tmp_path / "lapse.gif", ms_per_frame=250)
    with Image.open(path) as gif:
        assert gif.info["duration"] == 250
        gif.seek(2)
        last = np.asarray(gif.convert("RGB"), dtype=np.int16)
    with Image.open(frames[2]) as original:
        drawn = np.asarray(original.convert("RGB"), dtype=np.int16)
    assert np.abs(last - drawn).mean() < 2.0


def test_gif_names_the_frame_of_the_wrong_size(tmp_path: Path) -> None:
    frames = draw_frames(tmp_path / "frames", 2)
    odd = draw_frames(tmp_path / "odd", 1, size_px=(640, 480))[0]
    with pytest.raises(ValueError, match=r"frame .*odd.epoch_000\.png is 640x480 pixels but .* is 800x704"):
        render.write_gif([*frames, odd], tmp_path / "lapse.gif")
    assert not (tmp_path / "lapse.gif").exists()
    with pytest.raises(ValueError, match="frame_paths is empty"):
        render.write_gif([], tmp_path / "lapse.gif")


# --- the MP4 --------------------------------------------------------------------------------------------------------


def read_video(path: Path) -> tuple[np.ndarray, dict]:
    """Every picture of a video as (n, height, width, 3) uint8, and its metadata, as imageio reads them."""
    import imageio.v3 as iio

    return iio.imread(path, plugin="FFMPEG", index=None), iio.immeta(path, plugin="FFMPEG")


def rgb_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def write_mp4_strictly(frames: list[Path], path: Path, caplog: pytest.LogCaptureFixture, **options: int) -> Path:
    """write_mp4 with every warning an error and every logged warning recorded: imageio-ffmpeg announces a resize
    through logging, not through warnings."""
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("error")
        written = render.write_mp4(frames, path, **options)
    assert [record.getMessage() for record in caplog.records] == []
    return written


def test_mp4_has_one_h264_picture_per_frame_at_two_a_second(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frames = draw_frames(tmp_path / "frames", 4)
    path = write_mp4_strictly(frames, tmp_path / "lapse.mp4", caplog)
    assert path == tmp_path / "lapse.mp4"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["frames", "lapse.mp4"]  # no temporary left behind
    video, meta = read_video(path)
    assert video.shape == (4, 704, 800, 3)  # 800 x 704 is already whole 16-pixel blocks: nothing added
    assert meta["fps"] == 2.0
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    drawn = [rgb_pixels(frame) for frame in frames]
    for position, picture in enumerate(video.astype(np.int16)):
        differences = [float(np.abs(picture - frame).mean()) for frame in drawn]
        assert differences[position] < 1.5, differences
        assert int(np.argmin(differences)) == position  # each picture is its own frame, in order


def test_mp4_pads_other_sizes_to_whole_blocks_instead_of_scaling(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    import imageio_ffmpeg

    frames = []
    for position in range(3):
        picture = np.full((170, 250, 3), 255, dtype=np.uint8)
        picture[30:90, 20 + 40 * position:80 + 40 * position] = TAB10_RED  # a block that moves right
        frames.append(tmp_path / f"frame_{position}.png")
        Image.fromarray(picture).save(frames[-1])
    # the control: imageio-ffmpeg left to itself scales 250 x 170 up to 256 x 176 and says so in its log
    with caplog.at_level(logging.WARNING):
        writer = imageio_ffmpeg.write_frames(str(tmp_path / "scaled.mp4"), (250, 170), ffmpeg_log_level="error")
        writer.send(None)
        writer.close()
    assert any("resizing from (250, 170) to (256, 176)" in record.getMessage() for record in caplog.records)
    caplog.clear()

    path = write_mp4_strictly(frames, tmp_path / "lapse.mp4", caplog, ms_per_frame=250)
    video, meta = read_video(path)
    assert video.shape == (3, 176, 256, 3)
    assert meta["fps"] == 4.0  # ms_per_frame reaches the encoder
    for picture, frame in zip(video.astype(np.int16), frames):
        assert np.abs(picture[:170, :250] - rgb_pixels(frame)).mean() < 1.5  # in place, at its own size
        assert np.abs(picture[170:] - 255).max() <= 3  # the padding is the white edge, not a black bar
        assert np.abs(picture[:, 250:] - 255).max() <= 3


def test_mp4_refuses_no_frames_frames_of_two_sizes_and_bad_timing(tmp_path: Path) -> None:
    frames = draw_frames(tmp_path / "frames", 2)
    odd = draw_frames(tmp_path / "odd", 1, size_px=(640, 480))[0]
    with pytest.raises(ValueError, match=r"frame .*odd.epoch_000\.png is 640x480 pixels but .* is 800x704"):
        render.write_mp4([*frames, odd], tmp_path / "lapse.mp4")
    with pytest.raises(ValueError, match="^frame_paths is empty; draw at least one frame before writing an MP4$"):
        render.write_mp4([], tmp_path / "lapse.mp4")
    for bad in (0, -500, 1.5, True):
        with pytest.raises(ValueError, match="ms_per_frame must be a positive whole number of milliseconds"):
            render.write_mp4(frames, tmp_path / "lapse.mp4", ms_per_frame=bad)
    assert sorted(item.name for item in tmp_path.iterdir()) == ["frames", "odd"]


# --- atomic writes and pyplot hygiene -------------------------------------------------------------------------------


def test_a_failed_drawing_leaves_neither_file_nor_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    def broken_savefig(self: Figure, *args: object, **kwargs: object) -> None:
        Path(args[0]).write_bytes(b"half a png")  # fail after writing something, as a full disk would
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    xy, labels = clustered_map(20)
    folder = tmp_path / "frames"
    with pytest.raises(OSError, match="disk full"):
        render.draw_frame(xy, labels, DIGITS, folder / "epoch_000.png", title="Epoch 0")
    with pytest.raises(OSError, match="disk full"):
        render.draw_confusion(np.eye(10, dtype=np.int64), DIGITS, folder / "confusion.png", title="Confusion")
    assert list(folder.iterdir()) == []


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = render.write_json({"version": 1}, tmp_path / "metrics.json")

    def broken_fsync(descriptor: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)  # fails after the new text is in the temporary file
    with pytest.raises(OSError, match="I/O error"):
        render.write_json({"version": 2}, path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"version": 1}
    assert sorted(item.name for item in tmp_path.iterdir()) == ["metrics.json"]


def test_rendering_never_touches_pyplot_and_imports_matplotlib_lazily(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import numpy as np
        from layerlapse import render
        assert "matplotlib" not in sys.modules, "importing render must stay fast"
        out = Path({str(tmp_path)!r})
        rng = np.random.default_rng(0)
        xy, labels, names = rng.normal(size=(50, 2)), rng.integers(0, 10, 50), [str(d) for d in range(10)]
        frames = [render.draw_frame(xy, labels, names, out / f"f{{i}}.png", title=f"Epoch {{i}}") for i in range(2)]
        render.write_gif(frames, out / "lapse.gif")
        render.draw_samples(rng.random((4, 8, 8)), labels[:4], names, out / "samples.png")
        render.draw_curves([dict(loss=1.0, acc=0.5, val_loss=1.0, val_acc=0.5)], out / "curves.png")
        render.draw_train_test(xy, labels, xy[:5], names, out / "train_test.png", title="t")
        render.draw_confusion(render.confusion_matrix(labels, labels, 10), names, out / "confusion.png", title="c")
        render.write_json({{"ok": True}}, out / "metrics.json")
        assert "matplotlib.pyplot" not in sys.modules
        print("clean")
    """)
    assert_runs_clean(script, render.__file__)
