"""Tests for layerlapse.store.images: the thumbnails a recorder makes and the pixels a stored image shows as, held to
the code that made them before (capture's torch version, the Keras callback's, the report's)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from layerlapse.store.images import as_thumbnails, stored_pixels


def keras_thumbnails(inputs: Any) -> np.ndarray | None:
    """integrations/keras.py's _thumbnails as it was (keras cannot be imported here, so its code is the oracle)."""
    if not isinstance(inputs, np.ndarray):
        return None
    images = inputs[..., 0] if inputs.ndim == 4 and inputs.shape[-1] == 1 else inputs
    if images.ndim != 3 or images.shape[1] > 128 or images.shape[2] > 128:
        return None
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind != "f":
        return None
    images = images.astype(np.float32)
    low, high = float(images.min()), float(images.max())
    if 0.0 <= low and high <= 1.0:
        low, high = 0.0, 1.0
    return np.clip(np.round((images - low) / ((high - low) or 1.0) * 255), 0, 255).astype(np.uint8)


RNG = np.random.default_rng(0)
BATCHES = {
    "unit floats": RNG.random((6, 28, 28)),
    "normalised floats": (RNG.random((6, 28, 28)) - 0.1307) / 0.3081,
    "float16": RNG.random((6, 12, 12)).astype(np.float16) * 3,
    "one value": np.full((3, 8, 8), 7.0, dtype=np.float32),
    "halves": np.array([[[0.5, 1.5, 2.5]]], dtype=np.float32),  # .5 steps: both round half to even
    "uint8": RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8),
    "too wide": RNG.random((2, 28, 129)),
    "int64": RNG.integers(0, 256, (5, 28, 28)),
    "rgb": RNG.random((2, 28, 28, 3)),
}


def as_channels(batch: np.ndarray, channels_last: bool) -> np.ndarray:
    return batch[..., None] if channels_last else batch[:, None]


@pytest.mark.parametrize("name", BATCHES)
@pytest.mark.parametrize("with_channel", [False, True])
def test_keras_thumbnails_are_what_they_were(name: str, with_channel: bool) -> None:
    batch = BATCHES[name]
    if with_channel and batch.ndim == 3:
        batch = as_channels(batch, channels_last=True)
    expected, made = keras_thumbnails(batch), as_thumbnails(batch, channels_last=True)
    assert (made is None) == (expected is None)
    if expected is not None:
        assert made.dtype == np.uint8
        np.testing.assert_array_equal(made, expected)


@pytest.mark.parametrize("name", ["unit floats", "normalised floats", "float16", "one value", "halves", "uint8"])
@pytest.mark.parametrize("with_channel", [False, True])
def test_torch_thumbnails_are_what_they_were(name: str, with_channel: bool) -> None:
    torch = pytest.importorskip("torch")
    from layerlapse.capture.probe import thumbnails

    batch = BATCHES[name]
    if with_channel:
        batch = as_channels(batch, channels_last=False)
    np.testing.assert_array_equal(as_thumbnails(batch, channels_last=False), thumbnails(torch.from_numpy(batch)))


def test_a_channel_in_the_wrong_place_is_no_thumbnail() -> None:
    assert as_thumbnails(np.zeros((2, 1, 8, 8)), channels_last=True) is None
    assert as_thumbnails(np.zeros((2, 8, 8, 1)), channels_last=False) is None


@pytest.mark.parametrize("stored", [
    RNG.integers(0, 256, (4, 9, 9), dtype=np.uint8),
    RNG.integers(0, 256, (4, 9, 9, 1), dtype=np.uint8),
    RNG.integers(0, 256, (4, 9, 9, 3), dtype=np.uint8),
    RNG.random((4, 9, 9)) * 1.2 - 0.1,  # floats in [0, 1], a little past each end
    np.zeros((4, 9, 9, 2)),
    np.zeros((4, 9)),
])
def test_stored_images_show_as_the_report_showed_them(stored: np.ndarray) -> None:
    expected = stored[..., 0] if stored.ndim == 4 and stored.shape[-1] == 1 else stored
    if not (expected.ndim == 3 or (expected.ndim == 4 and expected.shape[-1] == 3)):
        assert stored_pixels(stored) is None
        return
    if expected.dtype != np.uint8:
        expected = np.rint(np.clip(expected.astype(np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    np.testing.assert_array_equal(stored_pixels(stored), expected)
    assert stored_pixels(stored).dtype == np.uint8
