"""Pictures of a run: arrays in, files out, every drawing function in one namespace.

The drawings live in modules by job (`frames`, `testpoints`, `grids`, `charts`, `layer_charts`, `video`), with the
shared look in `style`, the wording of captions in `captions` and the canvas in `canvas`; this module re-exports
them for the callers that import `layerlapse.render.figures`. Every function draws with matplotlib's object API on
the Agg canvas (never pyplot, so no figure registry and no leaked figures), writes its file atomically and returns
the written path. matplotlib takes over a second to import, so it is imported inside the functions: importing this
module, or `layerlapse --help`, stays fast.
"""

from __future__ import annotations

from .canvas import PathLike, write_json
from .charts import confusion_matrix, draw_confusion, draw_curves, draw_data_map
from .frames import draw_frame, draw_samples, draw_train_test
from .grids import choose_snapshots, draw_layer_grid, draw_layers_frame
from .layer_charts import draw_cka, draw_layer_measures
from .points import common_limits
from .style import MISCLASSIFIED_COLOR, MISCLASSIFIED_HALO_COLOR, TEST_EDGE_COLOR, TEST_POINTS_DRAWN_AT_MOST
from .testpoints import PlacedTestPoints, draw_test_points, drawn_test_rows
from .video import write_gif, write_mp4

__all__ = [
    "MISCLASSIFIED_COLOR", "MISCLASSIFIED_HALO_COLOR", "TEST_EDGE_COLOR", "TEST_POINTS_DRAWN_AT_MOST", "PathLike",
    "PlacedTestPoints", "choose_snapshots", "common_limits", "confusion_matrix", "draw_cka", "draw_confusion",
    "draw_curves", "draw_data_map", "draw_frame", "draw_layer_grid", "draw_layer_measures", "draw_layers_frame",
    "draw_samples", "draw_test_points", "draw_train_test", "drawn_test_rows", "write_gif", "write_json", "write_mp4",
]
