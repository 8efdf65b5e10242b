"""What a frame says under its map, and how a run's map method is named: one wording for the PNG frames and the
report's page alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..maps.faithfulness import caption as quality_caption
from ..maps.project import LEGACY_METHODS, METHOD_LABELS
from ..store.history import is_untrained
from ..store.reading import RunReading

# A run mapped before the manifest named its map method (no "maps" entry, or one without "method") was mapped the one
# way there was then: a UMAP per epoch, which LEGACY_METHODS calls by its present name.
_METHOD_BEFORE_THE_CHOICE = "umap"


def map_method(maps_info: Mapping[str, Any] | None) -> str:
    """The run's map method by its present name ("aligned", "independent", …), from the manifest's "maps" entry
    (None, or an entry without "method", for a run written before it was stored)."""
    method = (maps_info or {}).get("method", _METHOD_BEFORE_THE_CHOICE)
    return LEGACY_METHODS.get(method, method)


def method_label(maps_info: Mapping[str, Any] | None) -> str:
    """How a frame's caption and the report name the run's map method ("aligned UMAP (layerlapse)", …)."""
    method = map_method(maps_info)
    return METHOD_LABELS.get(method, method)


def measures_line(quality: Mapping[str, Any]) -> str:
    """A frame's stored faithfulness measures and notes in one line ("" when the run measured none)."""
    return " · ".join(filter(None, [quality_caption(dict(quality)), *quality.get("notes", [])]))


def frame_caption(run: RunReading, layer: str, snapshot: int, n_points: int) -> str:
    """Two lines under a layer's frame: what it shows (layer, points, map method, accuracy), then how faithful it is
    (`measures_line`); the report's page says the same of the same frame."""
    reduced = f" ({reduction})" if (reduction := run.reduction(layer)) else ""
    first = (f"layer {layer}{reduced} · {run.describe_points(n_points)} · map: {method_label(run.manifest.get('maps'))}"
             f"{_accuracy(run, snapshot)}")
    second = measures_line(run.frame_measures(layer, snapshot))
    return f"{first}\n{second}" if second else first


def _accuracy(run: RunReading, snapshot: int) -> str:
    row = next((row for row in run.history if row.get("snapshot") == snapshot), {})
    if is_untrained(run.manifest, snapshot):
        return " · untrained"
    if isinstance(row.get("val_acc"), (int, float)):
        return f" · validation accuracy {row['val_acc']:.4f}"
    return ""
