"""Pictures of a run: arrays in, files out.

Every function draws with matplotlib's object API on the Agg canvas (never pyplot, so no figure registry and no
leaked figures), writes its file atomically and returns the written path. matplotlib takes over a second to import,
so it is imported inside the functions: importing this module, or `layerlapse --help`, stays fast.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import atomic_output
from .errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

PathLike = str | os.PathLike[str]

# A power of two: size_px / DPI is then an exact binary fraction, so the canvas comes out at exactly size_px
# (Agg truncates width * dpi to an int, and 704 / 100 * 100 may land a hair under 704).
_DPI = 128
_FRAME_SIZE_PX = (800, 704)
# Fixed rectangles (figure fractions) rather than tight or constrained layout: every frame then puts the map at the
# same place, so the GIF does not wobble.
_MAP_RECT = (0.03, 0.07, 0.76, 0.84)
_COLORBAR_RECT = (0.81, 0.14, 0.025, 0.70)
_TEST_STAR_COLOR = "gold"


def _new_figure(size_px: tuple[int, int]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = size_px
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    FigureCanvasAgg(figure)  # attaches itself to the figure; Agg needs no display
    return figure


def _save_png(figure: Figure, path: PathLike) -> Path:
    with atomic_output(path) as temporary:
        # The temporary name has no .png suffix, so the format is named; no bbox_inches="tight", which would change
        # the pixel size from one picture to the next.
        figure.savefig(temporary, format="png", dpi=_DPI)
    return Path(path)


def _check_frame_size(size_px: tuple[int, int]) -> None:
    if len(size_px) != 2 or any(int(side) != side or side <= 0 or side % 16 for side in size_px):
        raise ConfigError(
            f"size_px must be two positive multiples of 16 (video encoders work in 16-pixel blocks), got {size_px!r}; "
            f"try {_FRAME_SIZE_PX}"
        )


def _check_points(xy: np.ndarray, labels: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {xy.shape}")
    if labels.shape != (xy.shape[0],):
        raise ValueError(f"labels must have shape ({xy.shape[0]},) to match {name}, got {labels.shape}")
    return xy, labels


def _finite_rows(xy: np.ndarray) -> np.ndarray:
    # A map can hold NaN or inf rows (a diverged network, a point the projection could not place); skip them.
    return np.isfinite(xy).all(axis=1)


def _class_colormap(n_classes: int) -> ListedColormap:
    import matplotlib
    from matplotlib.colors import ListedColormap

    if n_classes <= 10:
        colors = matplotlib.colormaps["tab10"].colors[:n_classes]
    elif n_classes <= 20:
        colors = matplotlib.colormaps["tab20"].colors[:n_classes]
    else:
        colors = matplotlib.colormaps["turbo"].resampled(n_classes)(np.arange(n_classes))
    return ListedColormap(colors, name=f"classes{n_classes}")


def _marker_style(n_points: int) -> tuple[float, float]:
    """Marker area (points²) and alpha: many points get small, translucent markers so dense clusters stay legible."""
    area = float(np.clip(8000.0 / max(n_points, 1), 0.8, 36.0))
    alpha = float(np.clip(math.sqrt(2000.0 / max(n_points, 1)), 0.35, 1.0))
    return area, alpha


def _class_scatter(
    figure: Figure,
    xy: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    point_size: float | None,
    limits: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> Axes:
    """Draw the map coloured by class on fixed axes, with a colour bar labelled by class name."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    n_classes = len(class_names)
    colormap = _class_colormap(n_classes)
    # Centre each class on an integer so that class k fills exactly the k-th colour band.
    norm = Normalize(vmin=-0.5, vmax=n_classes - 0.5)
    keep = _finite_rows(xy)
    area, alpha = _marker_style(int(keep.sum()))
    axes = figure.add_axes(_MAP_RECT)
    axes.scatter(
        xy[keep, 0], xy[keep, 1], c=labels[keep], cmap=colormap, norm=norm,
        s=area if point_size is None else point_size, alpha=alpha, linewidths=0,
    )
    if limits is not None:
        # the same view on every frame, widened to the axes' shape so that equal aspect needs no further change
        (x0, x1), (y0, y1) = limits
        box_ratio = (_MAP_RECT[3] * figure.bbox.height) / (_MAP_RECT[2] * figure.bbox.width)
        width, height = max(x1 - x0, (y1 - y0) / box_ratio), max(y1 - y0, (x1 - x0) * box_ratio)
        axes.set_xlim((x0 + x1 - width) / 2, (x0 + x1 + width) / 2)
        axes.set_ylim((y0 + y1 - height) / 2, (y0 + y1 + height) / 2)
        axes.set_aspect("equal", adjustable="box")
    else:
        # datalim keeps the axes box fixed and stretches the limits instead, so the map never moves between frames.
        axes.set_aspect("equal", adjustable="datalim")
    axes.set_xticks([])
    axes.set_yticks([])  # map coordinates have no units
    # A separate, opaque mappable: the colour bar should show the class colours at full strength.
    colorbar = figure.colorbar(ScalarMappable(norm=norm, cmap=colormap), cax=figure.add_axes(_COLORBAR_RECT))
    colorbar.set_ticks(range(n_classes), labels=list(class_names))
    colorbar.ax.tick_params(labelsize=8, length=0)
    return axes


def draw_frame(
    xy: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: PathLike,
    *,
    title: str,
    caption: str | None = None,
    point_size: float | None = None,
    size_px: tuple[int, int] = _FRAME_SIZE_PX,
    limits: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> Path:
    """Draw one epoch's 2-D map as a scatter coloured by class, exactly `size_px` pixels, so frames stack into a GIF.
    `limits` ((x0, x1), (y0, y1)) fixes the view, the same for every frame of a time-lapse (`common_limits`)."""
    _check_frame_size(size_px)
    xy, labels = _check_points(xy, labels, "xy")
    figure = _new_figure(size_px)
    axes = _class_scatter(figure, xy, labels, class_names, point_size, limits)
    axes.set_title(title, fontsize=12)
    if caption:
        figure.text(0.5, 0.012, caption, ha="center", va="bottom", fontsize=7,
                    color="0.35")
    return _save_png(figure, path)


def common_limits(maps: Sequence[np.ndarray], margin: float = 0.03
                  ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """One view that holds every finite point of every map, with a small margin (None when there is none)."""
    points = [np.asarray(xy, dtype=np.float64)[_finite_rows(np.asarray(xy))] for xy in maps]
    points = [xy for xy in points if len(xy)]
    if not points:
        return None
    low = np.min([xy.min(axis=0) for xy in points], axis=0)
    high = np.max([xy.max(axis=0) for xy in points], axis=0)
    pad = np.maximum((high - low) * margin, 1e-6)
    return (float(low[0] - pad[0]), float(high[0] + pad[0])), (float(low[1] - pad[1]), float(high[1] + pad[1]))


def draw_train_test(
    train_xy: np.ndarray,
    train_labels: np.ndarray,
    test_xy: np.ndarray,
    class_names: Sequence[str],
    path: PathLike,
    *,
    title: str,
) -> Path:
    """Draw the final training map coloured by class, with the test points placed on it as gold stars."""
    train_xy, train_labels = _check_points(train_xy, train_labels, "train_xy")
    test_xy, _ = _check_points(test_xy, np.zeros(len(test_xy)), "test_xy")
    figure = _new_figure(_FRAME_SIZE_PX)
    axes = _class_scatter(figure, train_xy, train_labels, class_names, None)
    keep = _finite_rows(test_xy)
    # Stars must stay visible over the map however many there are, so they shrink only down to a readable size.
    star_area = float(np.clip(4000.0 / max(int(keep.sum()), 1), 12.0, 80.0))
    axes.scatter(
        test_xy[keep, 0], test_xy[keep, 1], marker="*", s=star_area, color=_TEST_STAR_COLOR,
        edgecolors="black", linewidths=0.3, label="test set",
    )
    axes.legend(loc="upper right", fontsize=8, markerscale=max(1.0, 60.0 / star_area) ** 0.5)
    axes.set_title(title, fontsize=12)
    return _save_png(figure, path)


def _as_gray_images(images: np.ndarray) -> tuple[np.ndarray, float]:
    """Return images as (N, H, W) and the value that means white (255 for uint8, 1 for floats in [0, 1])."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]  # a trailing channel axis of one
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, height, width), got {images.shape}")
    return images, 255.0 if images.dtype == np.uint8 else 1.0


def draw_samples(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: PathLike,
    *,
    grid: int = 10,
    seed: int = 0,
) -> Path:
    """Draw a grid of example images, each titled with its class; a seeded choice when there are more than fit."""
    images, white = _as_gray_images(images)
    labels = np.asarray(labels)
    if len(images) == 0 or labels.shape != (len(images),):
        raise ValueError(f"need at least one image and one label per image, got {images.shape} and {labels.shape}")
    cells = grid * grid
    if len(images) > cells:
        chosen = np.sort(np.random.default_rng(seed).choice(len(images), size=cells, replace=False))
    else:
        chosen = np.arange(len(images))
    rows = math.ceil(len(chosen) / grid)  # fewer images: fewer rows rather than a page of blanks
    cell_px = (96, 112)  # an 80-pixel image with its title above it
    figure = _new_figure((grid * cell_px[0], rows * cell_px[1]))
    # One axes measured in cells, rather than a subplot per image: a hundred subplots take seconds to draw.
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    axes.set_xlim(0, grid)
    axes.set_ylim(rows, 0)  # row 0 at the top
    half_width, height = 40 / cell_px[0], 80 / cell_px[1]
    for cell, index in enumerate(chosen):
        row, column = divmod(cell, grid)
        centre, bottom = column + 0.5, row + 1 - 4 / cell_px[1]
        axes.imshow(images[index], cmap="gray", vmin=0.0, vmax=white, interpolation="nearest", aspect="auto",
                    extent=(centre - half_width, centre + half_width, bottom, bottom - height))
        axes.text(centre, bottom - height - 0.02, str(class_names[int(labels[index])]), ha="center", va="bottom",
                  fontsize=7)
    return _save_png(figure, path)


def _series(history: Sequence[Mapping[str, float | None]], key: str) -> np.ndarray | None:
    # A metric is plotted when some row has it; a row without it, or with null (a nan the run stored), is a gap.
    if not any(isinstance(row.get(key), (int, float)) for row in history):
        return None
    return np.array([float(row[key]) if isinstance(row.get(key), (int, float)) else np.nan for row in history])


def draw_curves(history: Sequence[Mapping[str, float | None]], path: PathLike, *,
                x: Sequence[float] | None = None, x_label: str = "epoch") -> Path:
    """Draw accuracy and loss against epoch (1..E, or `x`), train and validation, in two panels side by side."""
    from matplotlib.ticker import MaxNLocator

    if not history:
        raise ValueError("history is empty; train at least one epoch before drawing curves")
    epochs = np.arange(1, len(history) + 1) if x is None else np.asarray(x)
    figure = _new_figure((1280, 512))
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.9, wspace=0.22)
    for axes, (metric, label) in zip(figure.subplots(1, 2), [("acc", "accuracy"), ("loss", "loss")]):
        for key, legend in [(metric, "train"), (f"val_{metric}", "validation")]:
            values = _series(history, key)
            if values is not None:
                axes.plot(epochs, values, marker="o", markersize=4, label=legend)
        axes.set_title(label, fontsize=11)
        axes.set_xlabel(x_label)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
        else:
            axes.text(0.5, 0.5, f"no {label} recorded", transform=axes.transAxes, ha="center", color="0.5")
    return _save_png(figure, path)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Count (true, predicted) pairs into an (n_classes, n_classes) int64 matrix; rows are the true class."""
    true = np.asarray(true).ravel()
    predicted = np.asarray(predicted).ravel()
    if true.shape != predicted.shape:
        raise ValueError(f"true and predicted must have the same length, got {true.size} and {predicted.size}")
    for name, values in [("true", true), ("predicted", predicted)]:
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(f"{name} labels must lie in [0, {n_classes}), got [{values.min()}, {values.max()}]")
    pairs = true.astype(np.int64) * n_classes + predicted.astype(np.int64)
    return np.bincount(pairs, minlength=n_classes * n_classes).reshape(n_classes, n_classes).astype(np.int64)


def _confusion_layout(class_names: Sequence[str]) -> tuple[int, int, int]:
    """Left and bottom margins and the heatmap's side, in pixels, leaving room for the longest class name."""
    label_px = 8 * max(len(str(name)) for name in class_names)  # about 8 px a character at 8 points and 128 dpi
    left = max(96, 40 + label_px)
    bottom = max(72, 48 + int(0.7 * label_px)) if label_px > 24 else 72
    side = min(560, _FRAME_SIZE_PX[0] - left - 110, _FRAME_SIZE_PX[1] - bottom - 50)
    return left, bottom, side


def draw_confusion(matrix: np.ndarray, class_names: Sequence[str], path: PathLike, *, title: str) -> Path:
    """Draw the confusion matrix as a heatmap with the count written in every cell."""
    matrix = np.asarray(matrix)
    n_classes = len(class_names)
    if matrix.shape != (n_classes, n_classes):
        raise ValueError(f"matrix must have shape ({n_classes}, {n_classes}) to match class_names, got {matrix.shape}")
    width, height = _FRAME_SIZE_PX
    left, bottom, side = _confusion_layout(class_names)
    figure = _new_figure(_FRAME_SIZE_PX)
    # A square heatmap (imshow keeps cells square) with a colour bar of exactly its height beside it.
    axes = figure.add_axes((left / width, bottom / height, side / width, side / height))
    image = axes.imshow(matrix, cmap="Blues", interpolation="nearest")
    colorbar_rect = ((left + side + 20) / width, bottom / height, 20 / width, side / height)
    colorbar = figure.colorbar(image, cax=figure.add_axes(colorbar_rect))
    colorbar.ax.tick_params(labelsize=8)
    # Dark cells need white text to stay readable; the switch sits halfway up the colour scale.
    threshold = (float(matrix.min()) + float(matrix.max())) / 2
    fontsize = 8 if n_classes <= 10 else max(4, 80 // n_classes)
    # Counts in full (":g" would print 1e+06); a normalised matrix of fractions gets two decimals.
    cell_format = "{:d}" if np.issubdtype(matrix.dtype, np.integer) else "{:.2f}"
    widest = max(len(cell_format.format(count)) for count in matrix.flat)
    fontsize = min(fontsize, max(4, fontsize * 5 // widest))  # six digits and more shrink to stay inside the cell
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, cell_format.format(count), ha="center", va="center", fontsize=fontsize,
                  color="white" if count > threshold else "black")
    long_names = max(len(str(name)) for name in class_names) > 3
    # Long names ("T-shirt/top") would run into each other under 56-pixel columns, so they lean.
    axes.set_xticks(range(n_classes), labels=list(class_names), fontsize=8,
                    rotation=40 if long_names else 0, ha="right" if long_names else "center",
                    rotation_mode="anchor")
    axes.set_yticks(range(n_classes), labels=list(class_names), fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=12)
    return _save_png(figure, path)


def _shared_palette(frames: Sequence[Any]) -> Any:
    """One adaptive palette for the whole GIF, from the first, middle and last frames, so colours do not flicker."""
    from PIL import Image

    samples = [frames[0], frames[len(frames) // 2], frames[-1]]
    width, height = samples[0].size
    montage = Image.new("RGB", (width, height * len(samples)))
    for position, frame in enumerate(samples):
        montage.paste(frame, (0, height * position))
    # Maximum coverage keeps the dominant flat colours (white, the class colours) exact, where median cut averages
    # white with the near-white antialiasing around it and greys the whole background.
    return montage.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE)


def _common_frame_size(frame_paths: Sequence[PathLike], kind: str) -> tuple[int, int]:
    """The (width, height) every frame shares, read from the headers only; a one-line error for none or a misfit."""
    from PIL import Image

    if not frame_paths:
        raise ValueError(f"frame_paths is empty; draw at least one frame before writing {kind}")
    sizes = []
    for frame_path in frame_paths:
        with Image.open(frame_path) as image:
            sizes.append(image.size)
        if sizes[-1] != sizes[0]:
            raise ValueError(
                f"frame {os.fspath(frame_path)} is {sizes[-1][0]}x{sizes[-1][1]} pixels but "
                f"{os.fspath(frame_paths[0])} is {sizes[0][0]}x{sizes[0][1]}; "
                "all frames must be the same size: draw them with the same size_px"
            )
    return sizes[0]


def write_gif(frame_paths: Sequence[PathLike], path: PathLike, *, ms_per_frame: int = 500) -> Path:
    """Join same-sized frames into a GIF that loops forever, `ms_per_frame` milliseconds each."""
    from PIL import Image

    _common_frame_size(frame_paths, "a GIF")
    frames = []
    for frame_path in frame_paths:
        with Image.open(frame_path) as image:
            frames.append(image.convert("RGB"))
    palette = _shared_palette(frames)
    # No dithering: flat class colours map onto the palette exactly, and dither noise would bloat the file.
    indexed = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    with atomic_output(path) as temporary:
        indexed[0].save(temporary, format="GIF", save_all=True, append_images=indexed[1:],
                        duration=ms_per_frame, loop=0)
    return Path(path)


# H.264 codes 16 x 16-pixel blocks; a frame of another size is padded up to the next multiple, never scaled.
_VIDEO_BLOCK_PX = 16
# x264's constant quality. 18 halves the error on the thin caption text against imageio's default (25) for a third
# more bytes: 16 frames of 3,000 points come to about 100 kB.
_VIDEO_CRF = 18


def _whole_blocks(pixels: int) -> int:
    return pixels + -pixels % _VIDEO_BLOCK_PX


def _padded_to_blocks(frame: np.ndarray) -> np.ndarray:
    """The frame grown at the right and bottom to whole video blocks by repeating its edge pixels: for layerlapse's
    frames that is the figure's background colour, and any other picture gains no bar of a colour it does not have."""
    height, width = frame.shape[:2]
    return np.pad(frame, ((0, _whole_blocks(height) - height), (0, _whole_blocks(width) - width), (0, 0)), mode="edge")


def write_mp4(frame_paths: Sequence[PathLike], path: PathLike, *, ms_per_frame: int = 500) -> Path:
    """Join same-sized frames into an H.264 MP4 that every player opens (yuv420p), one video frame per picture at
    1000 / `ms_per_frame` frames a second; sides that are not multiples of 16 pixels are padded, never scaled."""
    from fractions import Fraction

    import imageio_ffmpeg
    from PIL import Image

    if isinstance(ms_per_frame, bool) or not isinstance(ms_per_frame, int) or ms_per_frame <= 0:
        raise ValueError(f"ms_per_frame must be a positive whole number of milliseconds, got {ms_per_frame!r}")
    width, height = _common_frame_size(frame_paths, "an MP4")
    video_size = (_whole_blocks(width), _whole_blocks(height))
    with atomic_output(path) as temporary:
        # imageio-ffmpeg's own writer rather than imageio's: imageio picks its plugin by the file's suffix and refuses
        # the temporary name, where ffmpeg is simply told the container (-f mp4). The frames already fill whole
        # blocks, so macro_block_size never asks ffmpeg to scale them (and never logs its resize warning).
        writer = imageio_ffmpeg.write_frames(
            os.fspath(temporary), video_size, fps=Fraction(1000, ms_per_frame), codec="libx264",
            pix_fmt_out="yuv420p", quality=None, macro_block_size=_VIDEO_BLOCK_PX, ffmpeg_log_level="error",
            # the index at the front (faststart), so a browser starts playing before the whole file has arrived
            output_params=["-crf", str(_VIDEO_CRF), "-movflags", "+faststart", "-f", "mp4"])
        try:
            writer.send(None)  # starts ffmpeg
            for frame_path in frame_paths:  # one frame in memory at a time, however long the run
                with Image.open(frame_path) as image:
                    writer.send(_padded_to_blocks(np.asarray(image.convert("RGB"))))
        finally:
            writer.close()  # waits for ffmpeg to finish the file, or stops it after an error
    return Path(path)


def _jsonable(value: Any) -> Any:
    """Turn numpy values and paths into plain JSON; NaN and infinity become null, which JSON has instead."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def draw_data_map(confidence: np.ndarray, variability: np.ndarray, correctness: np.ndarray, path: PathLike, *,
                  snapshots: str) -> Path:
    """Dataset cartography's data map: each probe image at (variability, confidence) of its true class's
    probability over the trained snapshots, coloured by the share of snapshots it was right."""
    figure = _new_figure(_FRAME_SIZE_PX)
    axes = figure.add_axes((0.10, 0.10, 0.68, 0.80))
    points = axes.scatter(variability, confidence, c=correctness, cmap="RdYlGn", vmin=0.0, vmax=1.0, s=3,
                          linewidths=0, rasterized=True)
    colorbar = figure.colorbar(points, cax=figure.add_axes((0.81, 0.10, 0.025, 0.80)))
    colorbar.set_label("correctness (share of snapshots right)", fontsize=8)
    colorbar.ax.tick_params(labelsize=8)
    axes.set_xlabel("variability (std of the true class's probability)", fontsize=9)
    axes.set_ylabel("confidence (mean probability of the true class)", fontsize=9)
    axes.set_xlim(-0.01, max(0.5, float(np.max(variability, initial=0.0)) * 1.05))
    axes.set_ylim(-0.02, 1.02)
    axes.tick_params(labelsize=8)
    for x, y, text, where in ((0.02, 0.97, "easy to learn", "left"), (0.02, 0.03, "hard to learn", "left"),
                              (0.98, 0.5, "ambiguous", "right")):
        axes.text(x, y, text, transform=axes.transAxes, ha=where, va="center", fontsize=8, color="0.3",
                  bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.5})
    axes.set_title(f"Data map: {len(confidence):,} probe images over {snapshots}", fontsize=10)
    return _save_png(figure, path)


def write_json(obj: Any, path: PathLike) -> Path:
    """Write `obj` as indented UTF-8 JSON (metrics.json and the like), atomically."""
    text = json.dumps(_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)
