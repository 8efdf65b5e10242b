"""Tests for the one look and the one wording of every picture: layerlapse.render.style and render.captions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from layerlapse.config import RunConfig
from layerlapse.render import captions, frames, style
from layerlapse.store.run import RunFolder

CONFIG = RunConfig(dataset="digits", epochs=1, layers=("hidden",), probe=None, n_neighbors=15)


def matplotlib_class_colors(n_classes: int) -> np.ndarray:
    """The oracle: the colours the PNG frames have always been drawn with."""
    import matplotlib

    if n_classes <= 10:
        return np.array(matplotlib.colormaps["tab10"].colors[:n_classes])
    if n_classes <= 20:
        return np.array(matplotlib.colormaps["tab20"].colors[:n_classes])
    return matplotlib.colormaps["turbo"].resampled(n_classes)(np.arange(n_classes))[:, :3]


@pytest.mark.parametrize("n_classes", [1, 2, 9, 10, 11, 19, 20, 21, 47, 256, 300])
def test_the_class_colours_are_the_frames_own_as_floats_and_as_text(n_classes: int) -> None:
    from matplotlib.colors import to_hex

    expected = matplotlib_class_colors(n_classes)
    np.testing.assert_array_equal(np.array(style.class_colormap(n_classes).colors), expected)  # exactly: pixels stay
    assert style.class_colors(n_classes) == [to_hex(rgb) for rgb in expected]


@pytest.mark.parametrize("n_classes", [3, 10, 15, 20])
def test_up_to_20_classes_the_page_s_bokeh_palettes_agree(n_classes: int) -> None:
    from bokeh.palettes import Category10_10, Category20_20

    palette = Category10_10 if n_classes <= 10 else Category20_20
    assert style.class_colors(n_classes) == list(palette[:n_classes])


def test_the_layers_palette_is_tab10_in_layer_order() -> None:
    import matplotlib

    colors = style.layer_colors([f"layer{k}" for k in range(12)])
    tab10 = matplotlib.colormaps["tab10"].colors
    assert list(colors.values()) == [tuple(tab10[k % 10]) for k in range(12)]


@pytest.mark.parametrize("n_points", [0, 1, 50, 300, 2000, 10_000, 70_000])
def test_one_marker_rule_for_figures_and_page(n_points: int) -> None:
    markers = style.marker_style(n_points)
    density = max(n_points, 1)
    assert markers.area == float(np.clip(8000.0 / density, 0.8, 36.0))
    assert markers.alpha == float(np.clip(math.sqrt(2000.0 / density), 0.35, 1.0))
    size = float(np.clip(math.sqrt(16000.0 / density), 3.0, 9.0))
    assert markers.for_page() == {"size": size, "testSize": float(np.clip(size * 1.8, 7.0, 13.0)),
                                  "alpha": float(np.clip(math.sqrt(2000.0 / density), 0.35, 0.9))}


def mapped_run(tmp_path: Path, maps: dict | None) -> RunFolder:
    run = RunFolder.create(tmp_path / "run", CONFIG, {"name": "digits", "class_names": list("abc")})
    run.write_probe(np.array([0, 1, 2, 1]), None)
    if maps is not None:
        run.manifest["maps"] = maps
    run.record_epoch(0, {"snapshot": 0, "epoch": 0, "acc": 0.3, "val_acc": 0.25})
    return run


@pytest.mark.parametrize(("maps", "label"), [
    (None, "UMAP per epoch (the article's)"),  # written before the manifest named the method
    ({"method": "umap"}, "UMAP per epoch (the article's)"),  # the name before there was a choice
    ({"method": "aligned"}, "aligned UMAP (layerlapse)"),
    ({"method": "pca"}, "PCA"),
    ({"method": "something-new"}, "something-new"),
])
def test_a_run_s_map_method_has_one_label(tmp_path: Path, maps: dict | None, label: str) -> None:
    run = mapped_run(tmp_path, maps)
    assert captions.method_label(run.manifest.get("maps")) == label
    assert captions.frame_caption(run, "hidden", 0, 4) == f"layer hidden · 4 probe inputs · map: {label} · untrained"


def test_the_frame_s_caption_and_the_report_s_summary_name_the_method_alike(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from layerlapse.report import content

    run = mapped_run(tmp_path, None)  # an old run: the PNG once said "umap" where the page said the label
    label = captions.method_label(run.manifest.get("maps"))
    assert f"map: {label}" in content._summary(run, ["hidden"], [0], 4)
    drawn = []
    monkeypatch.setattr(frames, "save_png", lambda figure, path: drawn.append(figure) or Path(path))
    caption = captions.frame_caption(run, "hidden", 0, 4)
    frames.draw_frame(np.zeros((3, 2)), np.arange(3), list("abc"), tmp_path / "f.png", title="Epoch 0",
                      caption=caption)
    shown = " ".join(text.get_text().replace("\n", " ") for text in drawn[0].texts)
    assert f"map: {label}" in shown


def test_the_caption_s_second_line_is_the_frame_s_measures_and_notes() -> None:
    quality = {"trustworthiness": 0.91234, "continuity": 0.9, "knn_preservation": 0.5, "notes": ["a note"]}
    assert captions.measures_line(quality).endswith(" · a note")
    assert captions.measures_line({}) == ""
