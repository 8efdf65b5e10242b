"""A figure's canvas and its file: a new Agg figure of exact pixels, the atomic PNG and JSON writers, and the pixel
arithmetic the fixed layouts share (rectangles, wrapped captions, whole video blocks, sparse ticks)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ..store.atomic import atomic_output
from .style import DPI, FRAME_SIZE_PX

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PathLike = str | os.PathLike[str]


def new_figure(size_px: tuple[int, int]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = size_px
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)  # attaches itself to the figure; Agg needs no display
    return figure


def save_png(figure: Figure, path: PathLike) -> Path:
    with atomic_output(path) as temporary:
        # The temporary name has no .png suffix, so the format is named; no bbox_inches="tight", which would change
        # the pixel size from one picture to the next.
        figure.savefig(temporary, format="png", dpi=DPI)
    return Path(path)


def check_frame_size(size_px: tuple[int, int]) -> None:
    if len(size_px) != 2 or any(int(side) != side or side <= 0 or side % 16 for side in size_px):
        raise ConfigError(
            f"size_px must be two positive multiples of 16 (video encoders work in 16-pixel blocks), got {size_px!r}; "
            f"try {FRAME_SIZE_PX}"
        )


# H.264 codes 16 x 16-pixel blocks; a frame of another size is padded up to the next multiple, never scaled.
VIDEO_BLOCK_PX = 16


def whole_blocks(pixels: int) -> int:
    return pixels + -pixels % VIDEO_BLOCK_PX


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


def write_json(obj: Any, path: PathLike) -> Path:
    """Write `obj` as indented UTF-8 JSON (metrics.json and the like), atomically."""
    text = json.dumps(_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


_MOST_TICKS = 12


def tick_positions(count: int) -> list[int]:
    """Every position when few, else every k-th, so that tick labels never run into each other."""
    return list(range(0, count, math.ceil(count / _MOST_TICKS)))


_CAPTION_CHAR_PX = 6.6  # an average 7-point character at 128 dpi, for wrapping


def fraction_rect(figure_px: tuple[int, int], left: float, top: float, width: float, height: float
                   ) -> tuple[float, float, float, float]:
    """A rectangle given in pixels from the top left, as the figure fractions add_axes takes."""
    figure_width, figure_height = figure_px
    return left / figure_width, 1 - (top + height) / figure_height, width / figure_width, height / figure_height


def wrapped(text: str, width_px: float, most_lines: int) -> str:
    """The caption broken into lines that fit `width_px`, at most `most_lines` of them (the rest cut with '…')."""
    import textwrap

    characters = max(8, int(width_px / _CAPTION_CHAR_PX))
    lines = [line for paragraph in text.splitlines() for line in textwrap.wrap(paragraph, characters) or [""]]
    if len(lines) > most_lines:
        lines = lines[:most_lines]
        lines[-1] = lines[-1][:characters - 1].rstrip() + "…"
    return "\n".join(lines)
