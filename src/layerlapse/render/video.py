"""Frames joined into a time-lapse: a GIF with one shared palette, and an H.264 MP4 every player opens."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..store.atomic import atomic_output
from .canvas import VIDEO_BLOCK_PX, PathLike, whole_blocks


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


# x264's constant quality. 18 halves the error on the thin caption text against imageio's default (25) for a third
# more bytes: 16 frames of 3,000 points come to about 100 kB.
_VIDEO_CRF = 18


def _padded_to_blocks(frame: np.ndarray) -> np.ndarray:
    """The frame grown at the right and bottom to whole video blocks by repeating its edge pixels: for layerlapse's
    frames that is the figure's background colour, and any other picture gains no bar of a colour it does not have."""
    height, width = frame.shape[:2]
    return np.pad(frame, ((0, whole_blocks(height) - height), (0, whole_blocks(width) - width), (0, 0)), mode="edge")


def write_mp4(frame_paths: Sequence[PathLike], path: PathLike, *, ms_per_frame: int = 500) -> Path:
    """Join same-sized frames into an H.264 MP4 that every player opens (yuv420p), one video frame per picture at
    1000 / `ms_per_frame` frames a second; sides that are not multiples of 16 pixels are padded, never scaled."""
    from fractions import Fraction

    import imageio_ffmpeg
    from PIL import Image

    if isinstance(ms_per_frame, bool) or not isinstance(ms_per_frame, int) or ms_per_frame <= 0:
        raise ValueError(f"ms_per_frame must be a positive whole number of milliseconds, got {ms_per_frame!r}")
    width, height = _common_frame_size(frame_paths, "an MP4")
    video_size = (whole_blocks(width), whole_blocks(height))
    with atomic_output(path) as temporary:
        # imageio-ffmpeg's own writer rather than imageio's: imageio picks its plugin by the file's suffix and refuses
        # the temporary name, where ffmpeg is simply told the container (-f mp4). The frames already fill whole
        # blocks, so macro_block_size never asks ffmpeg to scale them (and never logs its resize warning).
        writer = imageio_ffmpeg.write_frames(
            os.fspath(temporary), video_size, fps=Fraction(1000, ms_per_frame), codec="libx264",
            pix_fmt_out="yuv420p", quality=None, macro_block_size=VIDEO_BLOCK_PX, ffmpeg_log_level="error",
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
