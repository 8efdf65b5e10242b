"""The items the runs disagree on most, as strips of thumbnails under the comparison's map: predicted apart most
often, learned by one run only, and (three runs or more) learned by some seeds only. The first two runs are the pair
the strips rank; `measures.json` holds the same lists."""

from __future__ import annotations

import numpy as np

from .compute import Compared
from .measures import learned_by, rank_disagreement

STRIP_SIZE = 12


def strip_headings(compared: Compared) -> dict[str, str]:
    a, b = compared.joined.names[:2]
    last = f"(true class: {', '.join(compared.joined.names)} at the last snapshot)"
    headings = {"disagree": f"{a} and {b} disagree most: predicted apart at the most snapshots {last}",
                "leftOnly": f"learned by {a}, not by {b}: right at the last snapshot {last}",
                "rightOnly": f"learned by {b}, not by {a}: right at the last snapshot {last}"}
    if len(compared.joined.runs) >= 3:
        headings["seedDependent"] = f"seed-dependent: learned by some runs only, the most divided first {last}"
    return headings


def ranked_items(compared: Compared) -> dict[str, np.ndarray]:
    """Each strip's items (positions among the shared items), most telling first."""
    pair = compared.pair(0, 1)
    disagree = compared.predicted[0] != compared.predicted[1]
    overlaps = list(pair.overlap.values())
    overlap = overlaps[0] if overlaps else np.full(disagree.shape, 255, dtype=np.uint8)
    ranked = {"disagree": rank_disagreement(overlap, disagree, STRIP_SIZE)}
    ranked["disagree"] = ranked["disagree"][disagree[:, ranked["disagree"]].any(axis=0)]
    codes = learned_by(compared.dynamics[0], compared.dynamics[1])
    confidence_gap = compared.confidence[0][-1].astype(np.int16) - compared.confidence[1][-1].astype(np.int16)
    for key, code, sign in (("leftOnly", 1, -1), ("rightOnly", 2, 1)):
        found = np.flatnonzero(codes == code)
        ranked[key] = found[np.argsort(sign * confidence_gap[found], kind="stable")][:STRIP_SIZE]
    if len(compared.joined.runs) >= 3:
        learned = np.mean([found.learned_from >= 0 for found in compared.dynamics], axis=0)
        divided = np.flatnonzero((learned > 0) & (learned < 1))
        ranked["seedDependent"] = divided[np.argsort(np.abs(learned[divided] - 0.5), kind="stable")][:STRIP_SIZE]
    return ranked


def ranked_strips(compared: Compared) -> dict[str, list[dict]]:
    """The strips as the report's strips: each item's id, class and a caption of what each run predicts last."""
    joined = compared.joined
    ids = joined.indices if joined.indices is not None else joined.rows[0]
    names = joined.class_names
    strips = {}
    for key, items in ranked_items(compared).items():
        rows = []
        for item in items:
            finals = [names[int(predicted[-1, item])] for predicted in compared.predicted]
            label = names[int(joined.labels[item])]
            rows.append({"index": int(ids[item]), "label": label, "predicted": finals[0],
                         "confidence": round(float(compared.confidence[0][-1, item]) / 255, 3),
                         "forgetting_events": int(compared.dynamics[0].forgetting_events[item]),
                         "caption": f"{label}: " + " ".join(finals),
                         "title": f"#{int(ids[item])} · true {label} · at the last snapshot " + ", ".join(
                             f"{name} {final}" for name, final in zip(joined.names, finals))})
        strips[key] = rows
    return strips
