"""How the page's arrays travel: map coordinates quantised to 16 bits and stored frame by frame as differences, every
array gzipped and base64-encoded into a <script> tag of its own (`Blobs`), the thumbnails as PNG atlases, and the
JSON payload (`payload`) that names them. `page.page_payload` reads a written page back.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
from collections.abc import Sequence

import numpy as np

from .content import REGIONS, VARIABILITY_MAX, Points, ReportContent, item_word, page_curve_axis
from .style import class_colors, colorblind_colors, dark_canvas
from .style import COMPARE_SIZE, MAP_SIZE, SIDE_WIDTH, SIDE_WIDTH_MAX, marker_style, marks, sequential_palette

NOT_DRAWN = 65535  # the 16-bit code of a point a frame does not draw (NaN coordinates)
COORD_STEPS = 65534  # codes 0..65534 span a layer's limits
THUMBNAIL_PX = 84  # thumbnails are shown about this big, in whole-pixel steps
SELECTION_THUMBNAILS = 60  # a data-map selection lists the thumbnails of its first this many points


def quantise(xy: np.ndarray, limits: tuple[float, float, float, float]) -> np.ndarray:
    """Coordinates (..., 2) as uint16 codes within `limits` (x0, x1, y0, y1); NaN or infinite rows → NOT_DRAWN.

    The round trip `dequantise(quantise(xy))` is off by at most half a step, (x1 - x0) / 65534 / 2 along x."""
    low = np.array(limits[0::2], dtype=np.float64)
    span = np.maximum(np.array(limits[1::2], dtype=np.float64) - low, 1e-12)
    scaled = (np.asarray(xy, dtype=np.float64) - low) / span * COORD_STEPS
    finite = np.isfinite(scaled).all(axis=-1, keepdims=True)
    codes = np.rint(np.clip(np.where(finite, scaled, 0.0), 0, COORD_STEPS)).astype(np.uint16)
    return np.where(finite, codes, np.uint16(NOT_DRAWN))


def dequantise(codes: np.ndarray, limits: tuple[float, float, float, float]) -> np.ndarray:
    """The inverse of `quantise`, as the page does it: NOT_DRAWN → NaN (both coordinates)."""
    low = np.array(limits[0::2], dtype=np.float64)
    span = np.maximum(np.array(limits[1::2], dtype=np.float64) - low, 1e-12)
    xy = low + codes.astype(np.float64) / COORD_STEPS * span
    return np.where((codes == NOT_DRAWN).any(axis=-1, keepdims=True), np.nan, xy)
class Blobs:
    """The page's arrays and thumbnail atlases, each in a <script> tag of its own (`layerlapse-blob-K`) as base64,
    outside Bokeh's document: the payload names them (`{"blob": K, ...}`), and payload.js decodes them with the
    browser's own base64 and gzip (DecompressionStream) before drawing. Arrays are gzipped; a map's frames are
    first stored as each frame's difference from the one before, low bytes before high bytes (`delta_planes`), as
    points that hold still then give long runs of zeros."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def array(self, array: np.ndarray, *, frames_delta: bool = False) -> dict:
        array = np.ascontiguousarray(array)
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        raw = delta_planes(little) if frames_delta else little.tobytes()
        ref = {"blob": self._add(gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)), "dtype": array.dtype.name,
               "shape": list(array.shape), "encoding": "gzip"}
        if frames_delta:
            ref["delta"] = True
        return ref

    def png(self, data: bytes) -> int:
        return self._add(data)

    def _add(self, data: bytes) -> int:
        self.texts.append(base64.b64encode(data).decode("ascii"))
        return len(self.texts) - 1

    def html(self) -> str:
        # base64 holds no "<", so a tag's text can never close it early
        return "".join(f'<script type="application/octet-stream" id="layerlapse-blob-{k}">{text}</script>\n'
                       for k, text in enumerate(self.texts))


GZIP_LEVEL = 6  # level 9 saves 1-2 % of the bytes for 3-4 times the time


def delta_planes(codes: np.ndarray) -> bytes:
    """uint16 frames (frames, ...) as bytes: frame 0, then each frame minus the one before (mod 65536), each
    frame's low bytes before its high bytes. payload.js's `undoDeltas` is the inverse."""
    if codes.dtype != np.uint16 or codes.ndim < 2:
        raise ValueError(f"delta_planes packs uint16 frames, got {codes.dtype} of shape {codes.shape}")
    frames = codes.reshape(len(codes), -1)
    deltas = frames.copy()
    deltas[1:] = frames[1:] - frames[:-1]  # uint16 arithmetic wraps mod 65536
    planes = np.stack([deltas & 0xFF, deltas >> 8], axis=1).astype(np.uint8)  # (frames, 2, per frame)
    return planes.tobytes()


def undo_delta_planes(raw: bytes, shape: Sequence[int]) -> np.ndarray:
    """The inverse of `delta_planes`."""
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(shape[0], 2, -1).astype(np.uint16)
    deltas = planes[:, 0] | (planes[:, 1] << 8)
    return np.cumsum(deltas, axis=0, dtype=np.uint16).reshape(shape)  # the running sum wraps as the deltas did

ATLAS_IMAGES = 1024  # images per thumbnail atlas: a page decodes only the atlases of the images it shows


def thumbnail_atlases(images: np.ndarray, blobs: Blobs) -> dict:
    """Every image once, as tiles of PNG atlases of ATLAS_IMAGES each (a grid `columns` tiles wide), with the
    display scale; thumbnails.js decodes an atlas when one of its images is first shown."""
    from PIL import Image

    count, height, width = images.shape[:3]
    per_atlas = min(ATLAS_IMAGES, count)
    columns = max(1, math.ceil(math.sqrt(per_atlas)))
    sheets = []
    for start in range(0, count, per_atlas):
        chunk = images[start:start + per_atlas]
        rows = max(1, math.ceil(len(chunk) / columns))
        grid = np.zeros((rows * columns, *images.shape[1:]), dtype=np.uint8)
        grid[:len(chunk)] = chunk
        grid = grid.reshape(rows, columns, *images.shape[1:]).swapaxes(1, 2)  # rows, height, columns, width[, 3]
        sheet = grid.reshape(rows * height, columns * width, *images.shape[3:])
        buffer = io.BytesIO()
        # zlib's default level: optimize=True saves 3 % of the bytes for 10 times the time (2 s at 10,000 images)
        Image.fromarray(sheet).save(buffer, format="PNG")
        sheets.append(blobs.png(buffer.getvalue()))
    return {"sheets": sheets, "perAtlas": per_atlas, "tile": [height, width], "columns": columns,
            "scale": max(1, round(THUMBNAIL_PX / max(height, width)))}


def payload(content: ReportContent, blobs: Blobs) -> str:
    """The JSON the page's code reads: the texts it shows, and its arrays as references into `blobs`."""
    return json.dumps({
        "title": content.title,
        "classNames": content.class_names,  # the colours are Bokeh's, in the scatter's colour mapper
        "epochs": content.epochs,
        "probe": _packed_points(content.probe, blobs),
        "test": None if content.test is None else _packed_points(content.test, blobs),
        "layers": [{"name": layer, "limits": content.limits[layer],
                    "probe": blobs.array(quantise(content.probe.coords[layer], content.limits[layer]),
                                         frames_delta=True),
                    "test": _packed_test_coords(content, layer, blobs),
                    "figures": content.layer_figures[layer]} for layer in content.layers],
        "confusion": None if content.confusion is None else blobs.array(content.confusion),
        "epochFigures": content.epoch_figures,
        "curveX": page_curve_axis(content)[1],  # where the curves' marker stands at each snapshot
        "snapshotWord": content.slider_title,  # "epoch", or "snapshot" where snapshots are not plainly epochs
        "marker": marker_style(len(content.probe)),
        "marks": marks(),
        "testImages": content.test_images,
        "variabilityMax": VARIABILITY_MAX,
        "colorBy": content.color_measures,
        "sequentialPalette": sequential_palette(),
        "dark": dark_canvas(),  # the dark scheme's colours for what the page colours itself (looks.js)
        # the class colours the reader can choose between (looks.js): tab10, the frames', and a colour-blind-safe one
        "palettes": {"tab10": class_colors(len(content.class_names)),
                     "colorblind": colorblind_colors(len(content.class_names))},
        "regions": {key: code for key, (code, _) in REGIONS.items()},
        "regionNames": {key: name for key, (_, name) in REGIONS.items()},
        "regionCutOffs": content.regions,
        "selectionThumbnails": SELECTION_THUMBNAILS,
        "itemWord": item_word(content),
        "layout": {"mapSize": MAP_SIZE, "compareSize": COMPARE_SIZE, "sideWidth": SIDE_WIDTH,
                   "sideWidthMax": SIDE_WIDTH_MAX},
        "strips": {name: _strip_points(content.probe, rows) for name, rows in content.strips.items()},
        "measures": content.measures,
        "comparison": content.comparison,
    }, allow_nan=False).replace("<", "\\u003c")  # within a <script> tag: no "</script>" can end it early


def _strip_points(points: Points, rows: list[dict]) -> list[dict]:
    """A strip's images as the page's points (those a subsample left out are left out here too)."""
    where = np.searchsorted(points.rows, [row["index"] for row in rows])
    return [{"i": int(i), "label": row["label"], "predicted": row.get("predicted"),
             "confidence": row.get("confidence"), "forgetting": row.get("forgetting_events"),
             **{key: row[key] for key in ("caption", "title") if key in row}}
            for i, row in zip(where, rows) if i < len(points.rows) and points.rows[i] == row["index"]]
def _packed_points(points: Points, blobs: Blobs) -> dict:
    subsampled = not np.array_equal(points.rows, np.arange(len(points)))
    return {"n": len(points), "labels": blobs.array(points.labels.astype(np.uint16)),
            "rows": blobs.array(points.rows.astype(np.uint32)) if subsampled else None,
            "predicted": None if points.predicted is None else blobs.array(points.predicted),
            "confidence": None if points.confidence is None else blobs.array(points.confidence),
            "dynamics": None if points.dynamics is None else {name: blobs.array(values)
                                                                for name, values in points.dynamics.items()},
            "extra": None if points.extra is None else {name: blobs.array(values)
                                                          for name, values in points.extra.items()},
            "texts": None if points.texts is None else packed_texts(points.texts, blobs),
            "datasetIndex": _dataset_index(points, blobs),
            "atlases": None if points.images is None or len(points) == 0 else thumbnail_atlases(points.images,
                                                                                                blobs)}


def _dataset_index(points: Points, blobs: Blobs) -> dict | None:
    """Each point's place in its dataset (uint32, as the page's typed arrays hold it), where the run stored one that
    fits."""
    index = points.dataset_index
    if index is None or len(index) == 0 or index.max() >= 2**32:
        return None
    return blobs.array(index.astype(np.uint32))


def packed_texts(texts: Sequence[str], blobs: Blobs) -> dict:
    """The items' texts as one JSON array in UTF-8, gzipped in a blob like the arrays (counted in the page's size,
    so the size budget subsamples a probe of long texts as it does one of images); state.js parses it once."""
    raw = json.dumps(list(texts), ensure_ascii=False).encode("utf-8")
    return blobs.array(np.frombuffer(raw, dtype=np.uint8))


def _packed_test_coords(content: ReportContent, layer: str, blobs: Blobs) -> dict | None:
    if content.test is None or layer not in content.test.coords:
        return None
    return blobs.array(quantise(content.test.coords[layer], content.limits[layer]), frames_delta=True)
