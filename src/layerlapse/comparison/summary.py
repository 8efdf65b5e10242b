"""measures.json: every measure of a comparison in plain JSON, per run, per pair of runs and per matched snapshot,
and, with three runs or more, their spread across seeds: the pairs of runs of one recipe (the same settings but
the seed) against the pairs of different recipes, so a difference between two recipes can be told from seed noise.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .compute import Compared, PairMeasures
from .measures import (LEARNED_BY, NEIGHBOUR_K, agreement_shares, consistency_counts, forgetting_difference,
                       learned_by, learned_later, pairs_by_group, seed_spread, spread)
from .ranking import ranked_items

# settings that choose what is recorded and drawn, not how the network learns: runs differing only in these (and
# the seed) are one recipe
NOT_RECIPE = ("seed", "data_seed", "probe", "test_probe", "n_neighbors", "map_method", "map_backend", "device")


def measures_summary(compared: Compared) -> dict:
    joined = compared.joined
    ids = joined.indices if joined.indices is not None else joined.rows[0]
    ranked = {key: [int(ids[item]) for item in items] for key, items in ranked_items(compared).items()}
    return _finite({
        "runs": [_run(compared, k) for k in range(len(joined.runs))],
        "items": {"shared": joined.n_items, "rule": joined.item_rule, "notes": list(joined.notes),
                  "ids": "dataset index" if joined.indices is not None else "probe row"},
        "snapshots": {"rule": joined.snapshot_rule,
                      "frames": [{"frame": frame, "title": compared.frame_titles[frame],
                                  "snapshots": dict(zip(joined.names, snapshots))}
                                 for frame, snapshots in enumerate(joined.frames)]},
        "samples": {"cka_items": compared.cka_items, "neighbour_items": int(len(compared.neighbour_items)),
                    "neighbour_k": NEIGHBOUR_K},
        "pairs": [_pair(compared, pair) for pair in compared.pairs],
        "ranked_items": ranked,
        "seeds": _seeds(compared) if len(joined.runs) >= 3 else None,
    })


def _finite(value):
    """JSON holds no NaN: a measure that is not defined is null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _run(compared: Compared, k: int) -> dict:
    joined = compared.joined
    run = joined.runs[k]
    test = run.manifest.get("test")
    return {"name": joined.names[k], "path": str(run.path), "layers": run.layers, "recipe": recipe(run),
            "probe_items": int(len(run.probe_labels())),
            "test_accuracy": None if not test else float(test["accuracy"]),
            "probe_accuracy": [_number(np.mean(predicted == joined.labels)) for predicted in compared.predicted[k]],
            "learned_at_end": _number(np.mean(compared.dynamics[k].learned_from >= 0)),
            "map_disparity_to_first": {layer: [_number(v) for v in values]
                                       for layer, values in compared.disparity[k].items()},
            "turned_onto": compared.turned_onto[k]}


def recipe(run) -> str:
    """The run's settings but its seed and what it records: runs of one recipe differ only by seed."""
    settings = {key: value for key, value in run.manifest.get("config", {}).items() if key not in NOT_RECIPE}
    settings["training"] = run.manifest.get("training")
    return json.dumps(settings, sort_keys=True, default=str)


def _pair(compared: Compared, pair: PairMeasures) -> dict:
    joined = compared.joined
    left, right = joined.runs[pair.left], joined.runs[pair.right]
    codes = learned_by(compared.dynamics[pair.left], compared.dynamics[pair.right])
    later = learned_later(compared.dynamics[pair.left], compared.dynamics[pair.right])
    forgetting = forgetting_difference(compared.dynamics[pair.left], compared.dynamics[pair.right])
    return {
        "left": joined.names[pair.left], "right": joined.names[pair.right],
        "cka": {"left_layers": left.layers, "right_layers": right.layers,
                "per_snapshot": [[[_number(v) for v in row] for row in frame] for frame in pair.cka]},
        "neighbour_overlap": [{"left_layer": left.layers[a], "right_layer": right.layers[b],
                               "mean_per_snapshot": [_mean_overlap(frame) for frame in overlap]}
                              for (a, b), overlap in pair.overlap.items()],
        "agreement": [agreement_shares(codes_at, predicted_left == predicted_right)
                      for codes_at, predicted_left, predicted_right in zip(
                          pair.agreement, compared.predicted[pair.left], compared.predicted[pair.right])],
        "dynamics": {"learned_by": {name: int(np.sum(codes == code)) for code, name in enumerate(LEARNED_BY)},
                     "learned_later_mean": _number(np.nanmean(later)) if np.isfinite(later).any() else None,
                     "forgetting_difference_mean": _number(np.mean(forgetting))},
    }


def _mean_overlap(frame: np.ndarray) -> float | None:
    measured = frame[frame != 255]
    return _number(measured.mean() / NEIGHBOUR_K) if len(measured) else None


def _seeds(compared: Compared) -> dict:
    """With three runs or more: which items every run learns, which some; and each pairwise measure's spread over
    the pairs of one recipe (seed noise) and over the pairs of different recipes."""
    joined = compared.joined
    final_right = np.stack([predicted[-1] == joined.labels for predicted in compared.predicted])
    first = np.stack([found.first_learned for found in compared.dynamics])
    per_item = seed_spread(final_right, first)
    groups = [recipe(run) for run in joined.runs]
    recipes = {key: k for k, key in enumerate(dict.fromkeys(groups))}
    by_kind = pairs_by_group(groups)
    measures = {}
    for kind, pairs in by_kind.items():
        values = [_pair_headline(compared, compared.pair(*sorted(pair))) for pair in pairs]
        measures[kind] = {key: spread([value[key] for value in values]) for key in values[0]} if values else {}
    return {"recipes": [recipes[key] for key in groups], "recipe_count": len(recipes),
            "items": consistency_counts(per_item["learned_share"]),
            "first_learned_spread_mean": _number(np.nanmean(per_item["first_learned_spread"]))
            if np.isfinite(per_item["first_learned_spread"]).any() else None,
            "pairwise_at_last_snapshot": measures}


def _pair_headline(compared: Compared, pair: PairMeasures) -> dict[str, float]:
    """A pair's measures at the last snapshot, of the runs' first layers."""
    shares = agreement_shares(pair.agreement[-1], compared.predicted[pair.left][-1] == compared.predicted[pair.right][-1])
    overlap = _mean_overlap(pair.overlap[(0, 0)][-1])
    return {"cka_first_layers": float(pair.cka[-1, 0, 0]),
            "neighbour_overlap": math.nan if overlap is None else overlap,
            "both_right": shares["both_right"], "same_prediction": shares["same_prediction"]}


def _number(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None
