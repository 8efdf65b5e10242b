"""What the notebook widget holds, read from a run folder: the report's own payload (report/content.py reads the
run, report/pack.py packs it), with its arrays as binary buffers of the widget's model instead of base64 text in
<script> tags, so that 60,000 points × 16 snapshots travel as bytes over the kernel's channel (which Jupyter
rate-limits for text output) and the browser decodes them with the report's own code (payload.js).

`WidgetState` remembers the thumbnail atlases it encoded, so reading the run again (a run in progress: new
snapshots) packs only the arrays and never sends the images again.

Torch is never imported here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..report.budget import subsample
from ..report.content import ReportContent, chosen_layers, read_content
from ..report.pack import Blobs, payload
from ..report.style import class_colors, colorblind_colors
from ..store import layout
from ..store.run import RunFolder

IMAGE_BLOBS = 1_000_000  # the atlases' blob numbers start here, apart from the arrays' (0, 1, ...)
ENCODINGS = ("raw", "gzip")  # raw little-endian bytes, or the report's gzip of frame deltas


class BufferBlobs(Blobs):
    """The report's `Blobs`, kept as bytes: arrays raw (or gzipped as the page's, `encoding="gzip"`), PNG atlases
    apart, numbered from IMAGE_BLOBS."""

    def __init__(self, encoding: str = "raw") -> None:
        super().__init__()
        self.encoding = encoding
        self.arrays: dict[str, bytes] = {}
        self.images: dict[str, bytes] = {}

    def array(self, array: np.ndarray, *, frames_delta: bool = False) -> dict:
        if self.encoding == "gzip":
            return super().array(array, frames_delta=frames_delta)
        array = np.ascontiguousarray(array)
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        key = len(self.arrays)
        self.arrays[str(key)] = little.tobytes()
        return {"blob": key, "dtype": array.dtype.name, "shape": list(array.shape), "encoding": "raw"}

    def _add(self, data: bytes) -> int:  # only the gzip arrays come here (png is overridden)
        key = len(self.arrays)
        self.arrays[str(key)] = data
        return key

    def png(self, data: bytes) -> int:
        key = IMAGE_BLOBS + len(self.images)
        self.images[str(key)] = data
        return key


@dataclass(frozen=True)
class Packed:
    """One reading of the run: the payload's JSON, its arrays and its atlases (bytes by blob number)."""

    payload: str
    arrays: dict[str, bytes]
    images: dict[str, bytes]
    snapshots: int
    rows: np.ndarray  # each page point's row in the run folder's arrays
    content: ReportContent | None  # None: nothing mapped yet (`waiting`)


class WidgetState:
    """Reads a run folder into what the widget's model holds, again and again as a run goes on."""

    def __init__(self, run: RunFolder, layers: Sequence[str] | None = None, max_points: int | None = None,
                 encoding: str = "raw", palette: str = "tab10") -> None:
        if palette not in PALETTES:
            raise ConfigError(f"palette must be one of {', '.join(PALETTES)}, got {palette!r}")
        if max_points is not None and (not isinstance(max_points, int) or max_points < 1):
            raise ConfigError(f"max_points must be a positive whole number of probe points, got {max_points!r}; "
                              f"leave it None to show every point")
        if encoding not in ENCODINGS:
            raise ConfigError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
        self.run = run
        self.layers = chosen_layers(run, layers)
        self.max_points = max_points
        self.encoding = encoding
        self.palette = palette

    def read(self) -> Packed:
        """The run as it is now (a run in progress: its mapped snapshots)."""
        content = read_content(self.run, self.layers)
        if self.max_points is not None and self.max_points < len(content.probe):
            shown = subsample(content, self.max_points)
            note = f"showing {len(shown.probe):,} of {content.probe_total:,} probe points (max_points)"
            content = dataclasses.replace(shown, notes=[note, *shown.notes])
        blobs = BufferBlobs(self.encoding)
        key = atlas_key(self.run, content)
        known = ATLASES.get(key)
        packed_content = content
        if known is not None:  # the images were packed before: pack without them, name the atlases made then
            packed_content = dataclasses.replace(
                content, probe=dataclasses.replace(content.probe, images=None),
                test=None if content.test is None else dataclasses.replace(content.test, images=None))
        data = json.loads(payload(packed_content, blobs))
        if known is None:
            known = ({name: (data[name] or {}).get("atlases") for name in ("probe", "test")}, blobs.images)
            while len(ATLASES) >= ATLASES_KEPT:
                ATLASES.pop(next(iter(ATLASES)))
            ATLASES[key] = known
        for name in ("probe", "test"):
            if data.get(name) is not None:
                data[name]["atlases"] = known[0].get(name)
        data.update(widget_extras(content, self.palette))
        return Packed(json.dumps(data, allow_nan=False), blobs.arrays, known[1], len(content.epochs),
                      content.probe.rows, content)


# The thumbnail atlases packed in this process, by run folder, points shown and stored images (`atlas_key`): PNG
# encoding is most of a first `show` at 60,000 images (1.6 s of 2.5), so a refresh, and showing the same run again,
# reuse the atlases (and the model's images trait is then the same bytes: they are never sent again).
ATLASES: dict[tuple, tuple[dict, dict[str, bytes]]] = {}
ATLASES_KEPT = 4


def atlas_key(run: RunFolder, content: ReportContent) -> tuple:
    files = run.manifest.get("files", {})
    return (str(run.path.resolve()), content.probe.rows.tobytes(),
            None if content.test is None else content.test.rows.tobytes(),
            files.get(layout.PROBE_IMAGES), files.get(layout.TEST_PROBE_IMAGES))


PALETTES = ("tab10", "colorblind")  # the class colours: the frames' (the report's default), or colour-blind safe


def widget_extras(content: ReportContent, palette: str = "tab10") -> dict:
    """What the widget needs beyond the report's payload: the class colours (the page takes them from Bokeh's
    colour mapper), the page's notes and its summary line."""
    count = len(content.class_names)
    colors = colorblind_colors(count) if palette == "colorblind" else class_colors(count)
    if colors is None:
        raise ConfigError(f"palette 'colorblind' has ten colours and this run has {count} classes: leave palette "
                          f"as 'tab10'")
    return {"classColors": colors, "notes": content.notes,
            "summary": content.summary, "title": content.title}


def waiting(run: RunFolder, why: str) -> Packed:
    """What the widget holds before the run has a map (a live recording's start): a note saying what it waits for."""
    method = (run.manifest.get("maps") or {}).get("method") or run.config.map_method
    words = (f"{run.path.name}: {run.epochs_complete + 1} snapshot{'s' if run.epochs_complete else ''} recorded, "
             f"none mapped yet; the maps appear here as they are made")
    if method == "aligned-umap":
        words += " (aligned-umap maps every snapshot at once, when training ends)"
    return Packed(json.dumps({"waiting": words, "why": why}), {}, {}, 0, np.zeros(0, dtype=np.int64), None)
