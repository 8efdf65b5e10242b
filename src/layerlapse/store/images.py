"""Images as a run keeps them: uint8 thumbnails made from a network's inputs when a run is recorded, and stored images
read back as the pixels the page and the exports show."""

from __future__ import annotations

import numpy as np

# An input larger than this a side is not shown as a thumbnail (the page shows them at 84 pixels).
THUMBNAIL_MAX_PX = 128


def as_thumbnails(images: np.ndarray, *, channels_last: bool) -> np.ndarray | None:
    """Single-channel images as uint8 (n, height, width) for the pictures, or None where they are not such images.

    Parameters
    ----------
    images : array
        A batch of inputs: (n, height, width), or (n, height, width, 1) / (n, 1, height, width) with its one channel.
        uint8 is kept as it is; floats are scaled from their own range (so normalised inputs look like images too),
        those already in [0, 1] from [0, 1]. Anything else (several channels, other dtypes, more than
        THUMBNAIL_MAX_PX pixels a side) gives None.
    channels_last : bool
        Where a 4-D batch keeps its channel: last as Keras does, else right after the batch axis as torch does.
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1 if channels_last else 1] == 1:
        images = images[..., 0] if channels_last else images[:, 0]
    if images.ndim != 3 or max(images.shape[1:]) > THUMBNAIL_MAX_PX:
        return None
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind != "f":
        return None
    return _scaled_to_bytes(images)


def _scaled_to_bytes(images: np.ndarray) -> np.ndarray:
    # float32, as the recorders always scaled: the same inputs make the same bytes in every run
    images = images.astype(np.float32)
    low, high = float(images.min()), float(images.max())
    if 0.0 <= low and high <= 1.0:
        low, high = 0.0, 1.0
    return np.clip(np.round((images - low) / ((high - low) or 1.0) * 255), 0, 255).astype(np.uint8)


def stored_pixels(images: np.ndarray) -> np.ndarray | None:
    """Stored images as uint8 pixels to show: (n, height, width) or (n, height, width, 3); None for shapes a
    thumbnail cannot show.

    Parameters
    ----------
    images : array
        A run's probe/images.npy (or its test probe's): uint8 as written by layerlapse's recorders, or floats in
        [0, 1] (scaled to 0..255 and rounded), with one trailing channel at most or three.
    """
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
        return None
    if images.dtype != np.uint8:  # floats in [0, 1]
        images = np.rint(np.clip(images.astype(np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    return images
