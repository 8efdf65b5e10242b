"""Tests for layerlapse.render.figures: real files in tmp_path, read back with Pillow."""

from __future__ import annotations

import json
import logging
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_runs_clean
from PIL import Image

from layerlapse.store import atomic
from layerlapse.render import charts, style
from layerlapse.render import figures as render
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
    left, bottom, width, height = style.MAP_RECT
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


PURE_RED = (255, 0, 0)  # render.MISCLASSIFIED_COLOR: the ring around a misclassified test point


def threes_on_a_map_of_zeros(n_test: int, wrong: int) -> tuple[np.ndarray, np.ndarray, render.PlacedTestPoints]:
    """A training map of class 0 and test images of class 3 placed on it, the first `wrong` predicted as 5."""
    rng = np.random.default_rng(1)
    train_xy = rng.normal(0, 3, (2000, 2))
    predicted = np.full(n_test, 3)
    predicted[:wrong] = 5
    test = render.PlacedTestPoints(rng.normal(0, 3, (n_test, 2)), np.full(n_test, 3), predicted)
    return train_xy, np.zeros(2000, dtype=int), test


def test_train_test_draws_test_points_in_their_class_colour_and_rings_the_misclassified(tmp_path: Path) -> None:
    train_xy, train_labels, right = threes_on_a_map_of_zeros(60, wrong=0)
    path = render.draw_train_test(train_xy, train_labels, right, DIGITS, tmp_path / "right.png", title="t")
    assert png_size(path) == (800, 704)
    assert count_colour(path, TAB10_RED, map_box()) > 300  # class 3's colour, where no training point is red
    assert count_colour(path, GOLD, map_box()) == 0  # no longer the article's gold stars
    *_, some_wrong = threes_on_a_map_of_zeros(60, wrong=6)
    ringed = render.draw_train_test(train_xy, train_labels, some_wrong, DIGITS, tmp_path / "wrong.png", title="t")
    # six rings of 40 and more pure red pixels each, beside the legend's own ring: seen at a glance
    assert count_colour(ringed, PURE_RED, map_box()) - count_colour(path, PURE_RED, map_box()) > 6 * 40


def legend_of(test: render.PlacedTestPoints, *, every_wrong: bool = True) -> list[str]:
    from matplotlib.figure import Figure

    axes = Figure().add_subplot()
    render.draw_test_points(axes, test, 10, every_wrong=every_wrong)
    return [text.get_text() for text in axes.get_legend().get_texts()]


def test_a_large_test_set_is_sampled_keeping_every_misclassified_and_the_legend_says_how_many() -> None:
    *_, test = threes_on_a_map_of_zeros(10_000, wrong=91)
    drawn = render.drawn_test_rows(test)
    assert len(drawn) == render.TEST_POINTS_DRAWN_AT_MOST and set(range(91)) <= set(drawn.tolist())
    np.testing.assert_array_equal(drawn, render.drawn_test_rows(test))  # seeded: the same every time
    assert legend_of(test) == ["test images: 300 of 10,000 (seeded sample)", "misclassified: 91"]
    *_, small = threes_on_a_map_of_zeros(300, wrong=4)
    assert legend_of(small) == ["test images: all 300", "misclassified: 4"]


def test_frames_draw_the_same_test_sample_whatever_was_misclassified() -> None:
    *_, early = threes_on_a_map_of_zeros(2000, wrong=1500)
    *_, late = threes_on_a_map_of_zeros(2000, wrong=10)
    early_rows = render.drawn_test_rows(early, every_wrong=False)
    np.testing.assert_array_equal(early_rows, render.drawn_test_rows(late, every_wrong=False))
    legend = legend_of(late, every_wrong=False)
    assert legend[0] == "test images: 300 of 2,000 (seeded sample)"
    assert legend[1] == f"misclassified: {int((early_rows < 10).sum())} of 10 drawn"


def test_a_frame_draws_its_test_points_over_the_map(tmp_path: Path) -> None:
    train_xy, train_labels, test = threes_on_a_map_of_zeros(60, wrong=6)
    plain = render.draw_frame(train_xy, train_labels, DIGITS, tmp_path / "plain.png", title="Epoch 1")
    with_test = render.draw_frame(train_xy, train_labels, DIGITS, tmp_path / "test.png", title="Epoch 1", test=test)
    assert png_size(with_test) == png_size(plain) == (800, 704)
    assert count_colour(plain, TAB10_RED, map_box()) == 0 < count_colour(with_test, TAB10_RED, map_box())
    assert count_colour(with_test, PURE_RED, map_box()) > 6 * 40


def test_test_points_that_do_not_fit_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"test predicted must have shape \(3,\), one predicted class per test "
                                         r"point, got \(2,\); pass the argmax of the test predictions"):
        render.PlacedTestPoints(np.zeros((3, 2)), np.zeros(3, dtype=int), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\) to match test xy"):
        render.PlacedTestPoints(np.zeros((3, 2)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"test labels must be class indices 0..9, found 0..12: pass the test set's "
                                         r"own labels"):
        legend_of(render.PlacedTestPoints(np.zeros((2, 2)), np.array([0, 12])))


def test_the_data_map_counts_and_states_the_run_s_regions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from layerlapse.measures.dynamics import cartography_regions, region_counts, region_cut_offs

    rng = np.random.default_rng(2)  # a run that rose from chance: every image varies by 0.15-0.4
    variability, confidence = rng.uniform(0.15, 0.4, 900), rng.uniform(0.3, 0.95, 900)
    figures = []
    monkeypatch.setattr(charts, "save_png", lambda figure, path: figures.append(figure) or Path(path))
    render.draw_data_map(confidence, variability, rng.uniform(0, 1, 900), tmp_path / "d.png", snapshots="epoch 1-9")
    cut_offs = region_cut_offs(variability)
    counts = region_counts(cartography_regions(confidence, variability))
    axes = figures[0].axes[0]
    borders = sorted({round(line.get_xdata()[0], 6) for line in axes.get_lines() if line.get_linestyle() == "--"})
    assert borders[-2:] == [round(cut_offs.steady_below, 6), round(cut_offs.ambiguous_from, 6)]
    words = [text.get_text() for text in axes.texts]
    assert f"ambiguous: {counts['ambiguous']:,} ({counts['ambiguous'] / 900:.0%})" in words
    assert f"easy to learn: {counts['easy']:,} ({counts['easy'] / 900:.0%})" in words
    stated = " ".join(text.get_text().replace("\n", " ") for text in figures[0].texts)
    assert stated.startswith(f"Regions: ambiguous = variability ≥ {cut_offs.ambiguous_from:.3f} (the run's most")
    assert "follow the run's own thirds of variability" in stated


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


def test_confusion_figure_shortens_long_class_names(tmp_path: Path) -> None:
    """From 82 characters on a name once left the heatmap no room (a traceback); a run holds names of 1,000."""
    matrix = render.confusion_matrix(np.arange(20) % 2, np.arange(20) % 2, 2)
    for length in (82, 1000):
        path = render.draw_confusion(matrix, ["a", "x" * length], tmp_path / f"confusion_{length}.png", title="C")
        assert png_size(path) == (800, 704)
    _, _, side = charts._confusion_layout([charts._shortened("x" * 1000, charts._CONFUSION_NAME_CHARS)])
    assert side >= 400 and charts._shortened("x" * 1000, 24) == "x" * 23 + "…"


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


# --- layer measures, CKA, the grid of layers and the layers' lapse -------------------------------------------------

TAB10_BLUE, TAB10_ORANGE = (31, 119, 180), (255, 127, 14)  # the first two layers' colours
MISSING_GREY = (216, 216, 216)  # matplotlib's "0.85" as Agg draws it: a CKA cell the measures could not fill


def distinct_colours(path: Path) -> int:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def layer_measures(n_snapshots: int, layers: tuple[str, ...] = ("conv", "hidden", "logits")) -> dict:
    """Measures in the stored schema: CKA falling with the distance between snapshots, accuracy rising."""
    snapshots = list(range(n_snapshots))
    titles = ["untrained", *(f"epoch {snapshot}" for snapshot in snapshots[1:])]
    measures = {"sample_size": 2000, "sample_seed": 43, "knn_k": 10, "cka_sample_size": 2000,
                "snapshots": snapshots, "titles": titles, "layers": {}, "layer_order": list(layers),
                "cka_between_layers": None}
    for depth, layer in enumerate(layers):
        drift = np.sqrt(np.arange(n_snapshots)) * (0.2 + 0.1 * depth)
        cka = np.exp(-np.abs(drift[:, None] - drift[None, :]))
        previous = [None, *(float(cka[s, s - 1]) for s in snapshots[1:])]
        accuracy = [float(0.9 - 0.6 * np.exp(-s / 3)) for s in snapshots]
        changes = sorted(snapshots[1:], key=lambda s: cka[s, s - 1])[:3]
        measures["layers"][layer] = {
            "knn_accuracy": accuracy, "linear_probe_accuracy": [value + 0.02 for value in accuracy],
            "cka_to_previous": previous, "neighbors_kept": [None, *(value - 0.1 for value in previous[1:])],
            "cka": cka.tolist(), "left_out": [0] * n_snapshots,
            "largest_change": [{"snapshot": s, "title": titles[s], "cka_change": 1 - float(cka[s, s - 1]),
                                "neighbors_kept": previous[s] - 0.1} for s in changes]}
    if len(layers) > 1:
        between = np.full((len(layers), len(layers)), 0.6) + 0.4 * np.eye(len(layers))
        measures["cka_between_layers"] = [between.tolist()] * n_snapshots
    return measures


@pytest.mark.parametrize(("n_snapshots", "layers", "size"), [
    (6, ("conv", "hidden", "logits"), (3 * 400 + 120, 2 * 400 + 50)),  # three layers and the between-layers panel
    (12, ("hidden", "logits"), (3 * 528 + 120, 528 + 50)),  # numbers in 12 x 12 cells: wider panels
    (50, ("hidden",), (520, 450)),  # no numbers, thinned ticks
    (1, ("hidden",), (520, 450)),
])
def test_cka_draws_a_panel_per_layer_and_one_between_layers(tmp_path: Path, n_snapshots: int,
                                                           layers: tuple[str, ...], size: tuple[int, int]) -> None:
    path = render.draw_cka(layer_measures(n_snapshots, layers), tmp_path / "figures" / "cka.png")
    assert path == tmp_path / "figures" / "cka.png"
    assert png_size(path) == size
    assert distinct_colours(path) > 100  # the heatmaps' colour scale, not a blank page


def test_cka_greys_the_pairs_that_were_not_measured(tmp_path: Path) -> None:
    measures = layer_measures(6, ("hidden",))
    complete = render.draw_cka(measures, tmp_path / "complete.png", title="Hidden layer")
    cka = measures["layers"]["hidden"]["cka"]
    cka[0][3] = cka[3][0] = None
    gaps = render.draw_cka(measures, tmp_path / "gaps.png")
    assert count_colour(complete, MISSING_GREY) < 50
    assert count_colour(gaps, MISSING_GREY) > 3000  # two cells of about 50 x 50 pixels


def test_cka_leaves_out_the_between_layers_panel_when_it_was_not_measured(tmp_path: Path) -> None:
    measures = layer_measures(4, ("conv", "hidden"))
    assert png_size(render.draw_cka(measures, tmp_path / "with.png")) == (3 * 400 + 120, 450)
    measures["cka_between_layers"] = None
    assert png_size(render.draw_cka(measures, tmp_path / "without.png")) == (2 * 400 + 120, 450)


def test_cka_refuses_no_layers_and_matrices_that_do_not_fit_the_snapshots(tmp_path: Path) -> None:
    for empty in ({}, {"snapshots": [0, 1], "layers": {}}):
        with pytest.raises(ValueError, match=r"^measures has no layers; compute the layer measures of a run"):
            render.draw_cka(empty, tmp_path / "cka.png")
    measures = layer_measures(6, ("conv", "hidden"))
    measures["layers"]["hidden"]["cka"] = layer_measures(5, ("hidden",))["layers"]["hidden"]["cka"]
    with pytest.raises(ValueError, match=r"^measures\['layers'\]\['hidden'\]\['cka'\] is 5 x 5 but there are 6 "
                                         r"snapshots; it must be 6 x 6: compute it over the same snapshots"):
        render.draw_cka(measures, tmp_path / "cka.png")
    measures["layers"]["hidden"]["cka"] = [[1.0] * 6] * 5 + [[1.0] * 4]
    with pytest.raises(ValueError, match=r"is 6 rows of lengths \[4, 6\] but there are 6 snapshots"):
        render.draw_cka(measures, tmp_path / "cka.png")
    del measures["layers"]["conv"]["cka"]
    with pytest.raises(ValueError, match=r"^measures\['layers'\]\['conv'\]\['cka'\] is empty but there are 6 "):
        render.draw_cka(measures, tmp_path / "cka.png")
    measures = layer_measures(6, ("conv", "hidden"))
    measures["cka_between_layers"][-1] = [[1.0, 0.5, 0.5]] * 3
    with pytest.raises(ValueError, match=r"cka_between_layers'\]\[-1\] is 3 x 3 but there are 2 layers"):
        render.draw_cka(measures, tmp_path / "cka.png")
    measures["cka_between_layers"] = measures["cka_between_layers"][:2]
    with pytest.raises(ValueError, match=r"cka_between_layers'\] has 2 matrices but there are 6 snapshots"):
        render.draw_cka(measures, tmp_path / "cka.png")
    measures = layer_measures(3, ("conv",))
    measures["layer_order"] = ["conv", "head"]
    with pytest.raises(ValueError, match=r"layer_order'\] names 'head', which measures\['layers'\] lacks"):
        render.draw_cka(measures, tmp_path / "cka.png")
    assert not (tmp_path / "cka.png").exists()


@pytest.mark.parametrize("n_snapshots", [1, 8, 50])
def test_layer_measures_draw_each_layer_in_its_tab10_colour(tmp_path: Path, n_snapshots: int) -> None:
    measures = layer_measures(n_snapshots, ("conv", "hidden"))
    measures["layers"]["hidden"]["knn_accuracy"][n_snapshots // 2] = None  # a gap, not a failure
    path = render.draw_layer_measures(measures, tmp_path / "figures" / "layer_measures.png")
    assert path == tmp_path / "figures" / "layer_measures.png"
    assert png_size(path) == (1152, 768)
    assert distinct_colours(path) > 50
    assert count_colour(path, TAB10_BLUE) > 50  # with one snapshot, its markers and the legend's line
    assert count_colour(path, TAB10_ORANGE) > 50


def test_layer_measures_without_neighbours_kept_or_largest_changes(tmp_path: Path) -> None:
    measures = layer_measures(5, ("hidden",))
    measures["layers"]["hidden"]["neighbors_kept"] = [None] * 5
    measures["layers"]["hidden"]["largest_change"] = []
    del measures["layers"]["hidden"]["linear_probe_accuracy"]  # an older file without the probe
    assert png_size(render.draw_layer_measures(measures, tmp_path / "layer_measures.png")) == (1152, 768)


def test_layer_measures_refuse_series_that_do_not_fit_the_snapshots(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^measures has no layers"):
        render.draw_layer_measures({"layers": {}}, tmp_path / "layer_measures.png")
    measures = layer_measures(4, ("hidden",))
    measures["layers"]["hidden"]["knn_accuracy"] = [0.5, 0.6, 0.7]
    with pytest.raises(ValueError, match=r"^measures\['layers'\]\['hidden'\]\['knn_accuracy'\] has 3 values but "
                                         r"there are 4 snapshots; compute the measures and the snapshots from the "
                                         r"same run$"):
        render.draw_layer_measures(measures, tmp_path / "layer_measures.png")
    measures = layer_measures(4, ("hidden",))
    measures["layers"]["hidden"]["largest_change"][0]["snapshot"] = 9
    with pytest.raises(ValueError, match=r"^largest_change names snapshot 9, which measures\['snapshots'\] lacks"):
        render.draw_layer_measures(measures, tmp_path / "layer_measures.png")
    measures["snapshots"] = []
    with pytest.raises(ValueError, match=r"^measures has no snapshots"):
        render.draw_layer_measures(measures, tmp_path / "layer_measures.png")
    assert not (tmp_path / "layer_measures.png").exists()


@pytest.mark.parametrize(("snapshots", "chosen"), [
    ([0], [0]),
    ([0, 1], [0, 1]),
    ([0, 1, 2], [0, 1, 2]),
    (list(range(16)), [0, 4, 8, 11, 15]),
    (list(range(50)), [0, 12, 24, 37, 49]),
    ([30, 10, 20, 10, 0], [0, 10, 20, 30]),  # unsorted, with a repeat: sorted, once each
])
def test_choose_snapshots_spreads_a_handful_over_the_run(snapshots: list[int], chosen: list[int]) -> None:
    assert render.choose_snapshots(snapshots) == chosen


def test_choose_snapshots_other_counts_and_bad_ones() -> None:
    assert render.choose_snapshots(list(range(16)), count=2) == [0, 15]
    assert render.choose_snapshots(list(range(100, 110)), count=20) == list(range(100, 110))
    with pytest.raises(ValueError, match=r"^count must be at least 2 \(the first and the last snapshot\), got 1$"):
        render.choose_snapshots([0, 1, 2], count=1)
    with pytest.raises(ValueError, match=r"^snapshots is empty; record at least one snapshot"):
        render.choose_snapshots([])


def layer_maps(layers: tuple[str, ...], snapshots: list[int], n_points: int) -> tuple[dict, np.ndarray]:
    """{layer: {snapshot: map}} whose classes pull apart as training goes on, and the labels."""
    xy, labels = clustered_map(n_points)
    noise = np.random.default_rng(7).normal(0.0, 4.0, xy.shape)
    return {layer: {snapshot: xy * (depth + 1) + noise / (1 + snapshot) for snapshot in snapshots}
            for depth, layer in enumerate(layers)}, labels


def test_layer_grid_puts_layers_in_rows_and_snapshots_in_columns(tmp_path: Path) -> None:
    snapshots = list(range(16))
    maps, labels = layer_maps(("conv", "hidden", "logits"), snapshots, 1000)
    maps["hidden"][15][:100] = np.nan  # left out, as in a frame
    chosen = render.choose_snapshots(snapshots)
    titles = {snapshot: f"epoch {snapshot}" for snapshot in snapshots}
    captions = {(layer, snapshot): "trust 0.985 · cont. 0.983" for layer in maps for snapshot in chosen}
    path = render.draw_layer_grid(maps, labels, FASHION, chosen, titles, tmp_path / "figures" / "layers.png",
                                  captions=captions)
    assert path == tmp_path / "figures" / "layers.png"
    width, height = png_size(path)
    assert width == 34 + 5 * (240 + 10) + 4  # 240-pixel cells
    assert 3 * 240 < height < 3 * 300 + 120
    assert distinct_colours(path) > 100
    assert count_colour(path, TAB10_RED) > 200  # class 3's points and its legend marker
    without = render.draw_layer_grid(maps, labels, DIGITS, chosen, {}, tmp_path / "plain.png")
    assert png_size(without)[1] < height  # no captions, no room kept for them


def test_layer_grid_stays_a_sane_size_for_many_layers(tmp_path: Path) -> None:
    layers = tuple(f"block{depth}" for depth in range(20))
    maps, labels = layer_maps(layers, [0, 5], 40)
    width, height = png_size(render.draw_layer_grid(maps, labels, DIGITS, [0, 5], {0: "untrained", 5: "epoch 5"},
                                                    tmp_path / "layers.png"))
    assert width < 600 and height <= 3200


def test_layer_grid_refuses_missing_snapshots_and_mismatched_labels(tmp_path: Path) -> None:
    maps, labels = layer_maps(("conv", "hidden"), [0, 1, 2], 30)
    target = tmp_path / "layers.png"
    with pytest.raises(ValueError, match=r"^maps has no layers; pass each layer's maps as \{layer: \{snapshot: map"):
        render.draw_layer_grid({}, labels, DIGITS, [0], {}, target)
    with pytest.raises(ValueError, match=r"^snapshots is empty; pick some to draw"):
        render.draw_layer_grid(maps, labels, DIGITS, [], {}, target)
    del maps["hidden"][2]
    with pytest.raises(ValueError, match=r"^maps\['hidden'\] has no map for snapshot 2; map that snapshot first or "
                                         r"leave it out of snapshots$"):
        render.draw_layer_grid(maps, labels, DIGITS, [0, 2], {}, target)
    with pytest.raises(ValueError, match=r"^labels must have shape \(30,\) to match maps\['conv'\]\[0\], got \(29,\); "
                                         r"pass one label per mapped point$"):
        render.draw_layer_grid(maps, labels[:29], DIGITS, [0, 1], {}, target)
    assert not target.exists()


def draw_layer_frames(folder: Path, layers: tuple[str, ...], class_names: list[str]) -> list[Path]:
    snapshots = [0, 1, 2]
    maps, labels = layer_maps(layers, snapshots, 500)
    limits = {layer: render.common_limits(list(by_snapshot.values())) for layer, by_snapshot in maps.items()}
    # captions of different lengths, from none to more than fits: the frames must not change size with them
    captions = [{}, {layers[0]: "trust 0.985 · cont. 0.983"},
                {layer: "layer · 500 probe images · map: UMAP\n" + "trust 0.985 · cont. 0.983 · " * 8
                 for layer in layers}]
    return [render.draw_layers_frame({layer: maps[layer][snapshot] for layer in layers}, labels, class_names,
                                     limits, folder / f"layers_{snapshot:03d}.png", title=f"epoch {snapshot}",
                                     captions=captions[snapshot]) for snapshot in snapshots]


@pytest.mark.parametrize(("layers", "class_names"), [
    (("hidden",), DIGITS), (("conv", "hidden", "logits"), FASHION), (tuple(f"block{i}" for i in range(6)), DIGITS),
    (("hidden", "logits"), [f"class {number}" for number in range(30)]),  # a colour strip instead of a legend
])
def test_layers_frames_of_a_run_are_one_size_and_make_a_gif(tmp_path: Path, layers: tuple[str, ...],
                                                            class_names: list[str]) -> None:
    frames = draw_layer_frames(tmp_path / "frames", layers, class_names)
    sizes = {png_size(frame) for frame in frames}
    assert len(sizes) == 1
    width, height = sizes.pop()
    assert width % 16 == 0 and height % 16 == 0  # whole video blocks: the MP4 needs no padding
    assert width >= min(len(layers), 4) * 384
    assert all(distinct_colours(frame) > 50 for frame in frames)
    gif = render.write_gif(frames, tmp_path / "lapse_layers.gif")
    with Image.open(gif) as image:
        assert image.size == (width, height)
        assert image.n_frames == 3


def test_layers_frame_colours_classes_as_the_frames_do(tmp_path: Path) -> None:
    xy, _ = clustered_map(200)
    path = render.draw_layers_frame({"hidden": xy}, np.full(200, 3), DIGITS, {"hidden": render.common_limits([xy])},
                                    tmp_path / "threes.png", title="epoch 1", captions={"hidden": "a caption"})
    assert count_colour(path, TAB10_RED) > 300


def test_layers_frame_refuses_no_layers_no_view_and_mismatched_labels(tmp_path: Path) -> None:
    xy, labels = clustered_map(40)
    target = tmp_path / "frame.png"
    with pytest.raises(ValueError, match=r"^maps_at has no layers; pass each layer's map at this snapshot"):
        render.draw_layers_frame({}, labels, DIGITS, {}, target, title="epoch 0", captions={})
    with pytest.raises(ValueError, match=r"^limits has no entry for layer 'logits'; pass common_limits over all of "
                                         r"that layer's maps, the same for every frame$"):
        render.draw_layers_frame({"hidden": xy, "logits": xy}, labels, DIGITS, {"hidden": None}, target,
                                 title="epoch 0", captions={})
    with pytest.raises(ValueError, match=r"^labels must have shape \(40,\) to match maps_at\['hidden'\], got \(41,\)"):
        render.draw_layers_frame({"hidden": xy}, np.zeros(41), DIGITS, {"hidden": None}, target, title="epoch 0",
                                 captions={})
    assert not target.exists()


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
        from layerlapse.render import figures as render
        assert "matplotlib" not in sys.modules, "importing render must stay fast"
        out = Path({str(tmp_path)!r})
        rng = np.random.default_rng(0)
        xy, labels, names = rng.normal(size=(50, 2)), rng.integers(0, 10, 50), [str(d) for d in range(10)]
        frames = [render.draw_frame(xy, labels, names, out / f"f{{i}}.png", title=f"Epoch {{i}}") for i in range(2)]
        render.write_gif(frames, out / "lapse.gif")
        render.draw_samples(rng.random((4, 8, 8)), labels[:4], names, out / "samples.png")
        render.draw_curves([dict(loss=1.0, acc=0.5, val_loss=1.0, val_acc=0.5)], out / "curves.png")
        render.draw_train_test(xy, labels, render.PlacedTestPoints(xy[:5], labels[:5]), names,
                               out / "train_test.png", title="t")
        render.draw_confusion(render.confusion_matrix(labels, labels, 10), names, out / "confusion.png", title="c")
        render.write_json({{"ok": True}}, out / "metrics.json")
        measures = {{"snapshots": [0, 1], "titles": ["a", "b"], "knn_k": 10, "sample_size": 50,
                    "layers": {{"h": {{"knn_accuracy": [0.5, 0.6], "cka": [[1.0, 0.9], [0.9, 1.0]]}}}}}}
        render.draw_cka(measures, out / "cka.png")
        render.draw_layer_measures(measures, out / "layer_measures.png")
        render.draw_layer_grid({{"h": {{0: xy, 1: xy}}}}, labels, names, [0, 1], {{}}, out / "layers.png")
        render.draw_layers_frame({{"h": xy}}, labels, names, {{"h": None}}, out / "l.png", title="t", captions={{}})
        assert "matplotlib.pyplot" not in sys.modules
        print("clean")
    """)
    assert_runs_clean(script, render.__file__)
