"""Notebooks executed headless by nbclient, in a kernel of this interpreter: `layerlapse.show(run)`, and a run
folder as a cell's last expression, each leave a widget whose stored model holds every snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("anywidget", reason="the notebook extra: pip install 'layerlapse[notebook]'")
pytest.importorskip("nbclient", reason="nbclient and ipykernel come with the dev extra")
pytest.importorskip("ipykernel", reason="nbclient and ipykernel come with the dev extra")

from nb_helpers import EPOCHS, PROBE, executed, private_jupyter, widget_states  # noqa: E402


def outputs(notebook, index: int) -> list[dict]:
    return notebook.cells[index]["outputs"]


def test_show_and_a_run_folder_display_the_widget_with_every_snapshot(small_run: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = private_jupyter(tmp_path / "jupyter", monkeypatch)
    notebook = executed([
        f"import layerlapse\nw = layerlapse.show({str(small_run)!r})\nw",
        "print(w.snapshots, len(w.selected), type(w.selection()).__name__)",
        f"run = layerlapse.load_run({str(small_run)!r})\nrun",
    ], tmp_path, kernel)
    shown = [output for output in outputs(notebook, 0) if output["output_type"] == "display_data"
             or output["output_type"] == "execute_result"]
    assert "application/vnd.jupyter.widget-view+json" in shown[0]["data"]
    assert outputs(notebook, 1)[0]["text"].strip() == f"{EPOCHS + 1} 0 DataFrame"
    # the run folder, the cell's last expression, displays as the widget too
    assert "application/vnd.jupyter.widget-view+json" in outputs(notebook, 2)[0]["data"]
    states = widget_states(notebook)
    assert len(states) == 2
    for state in states:
        data = json.loads(state["payload"])
        assert state["snapshots"] == EPOCHS + 1 and data["epochs"] == list(range(EPOCHS + 1))
        for layer in data["layers"]:
            codes = np.frombuffer(state["arrays"][str(layer["probe"]["blob"])], dtype="<u2")
            assert codes.size == (EPOCHS + 1) * PROBE * 2, layer["name"]
        assert all(state["images"][str(sheet)].startswith(b"\x89PNG") for sheet in data["probe"]["atlases"]["sheets"])
