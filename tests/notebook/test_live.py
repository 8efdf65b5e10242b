"""The live display: a Recorder with `live=True` shows the widget under the notebook cell and adds the snapshots as
they are mapped (a notebook executed by nbclient); outside a notebook a warning says so and the run is recorded as
ever; a run with no map yet shows a note instead of failing."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

pytest.importorskip("anywidget", reason="the notebook extra: pip install 'layerlapse[notebook]'")

from nb_helpers import executed, private_jupyter, widget_states  # noqa: E402

from layerlapse.errors import RecordingWarning, RunFolderError  # noqa: E402
from layerlapse.notebook import show  # noqa: E402
from layerlapse.notebook.live import NOT_A_NOTEBOOK  # noqa: E402
from layerlapse.notebook.widget import LapseWidget  # noqa: E402
from layerlapse.store.run import RunFolder, load_run  # noqa: E402

EPOCHS = 3
# a small loop of the docs' own kind: scikit-learn's digits, an MLP, maps by PCA alongside training
LOOP = f"""
import torch
from torch import nn
from sklearn.datasets import load_digits
from layerlapse import Recorder, RunConfig

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.images / 16, dtype=torch.float32).reshape(-1, 64)[:600]
y = torch.tensor(digits.target)[:600]
model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
rec = Recorder(model, layers=["1"], probe=x[:300], labels=y[:300], out=OUT, class_names=[str(d) for d in range(10)],
               config=RunConfig(map_method="pca"), live=LIVE)
rec.start()
counts = []
for epoch in range(1, {EPOCHS} + 1):
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    rec.epoch_end(epoch)
    counts.append(rec.session._display.widget.snapshots if hasattr(rec.session._display, "widget") else None)
run = rec.finish()
"""


def test_a_live_recorder_shows_the_widget_under_the_cell_and_adds_each_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = private_jupyter(tmp_path / "jupyter", monkeypatch)
    out = tmp_path / "live-run"
    notebook = executed([f"OUT, LIVE = {str(out)!r}, True\n" + LOOP,
                         "print(counts, rec.session._display.widget.snapshots)"], tmp_path, kernel)
    shown = [output for output in notebook.cells[0]["outputs"] if output["output_type"] == "display_data"]
    assert len(shown) == 1 and "application/vnd.jupyter.widget-view+json" in shown[0]["data"]
    counts, final = notebook.cells[1]["outputs"][0]["text"].strip().rsplit(" ", 1)
    growing = json.loads(counts)
    assert growing == sorted(growing) and int(final) == EPOCHS + 1
    [state] = widget_states(notebook)
    data = json.loads(state["payload"])
    assert state["snapshots"] == EPOCHS + 1 and data["epochs"] == list(range(EPOCHS + 1))
    codes = state["arrays"][str(data["layers"][0]["probe"]["blob"])]
    assert len(codes) == (EPOCHS + 1) * 300 * 2 * 2
    assert load_run(out).status == "complete"


def test_outside_a_notebook_live_warns_once_and_records_as_ever(tmp_path: Path) -> None:
    namespace = {"OUT": str(tmp_path / "run"), "LIVE": True}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(LOOP.replace('counts.append(rec.session._display.widget.snapshots if hasattr(rec.session._display, '
                          '"widget") else None)', "pass"), namespace)
    said = [str(warning.message) for warning in caught if issubclass(warning.category, RecordingWarning)]
    assert said == [NOT_A_NOTEBOOK] and "\n" not in said[0]
    assert namespace["run"].status == "complete" and namespace["run"].epochs_complete == EPOCHS


def test_a_run_with_no_map_yet_shows_a_note_where_show_says_what_to_do(small_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "unmapped"
    shutil.copytree(small_run, copy)
    shutil.rmtree(copy / "maps")
    run = RunFolder.open(copy, verify=False)  # as a recording's run before its first map
    for relpath in [relpath for relpath in run.manifest["files"] if relpath.startswith("maps/")]:
        del run.manifest["files"][relpath]
    with pytest.raises(RunFolderError, match=r"has no maps for layer 'hidden': map it with `layerlapse render "):
        show(run)
    widget = LapseWidget(run, wait=True)
    assert widget.snapshots == 0 and "none mapped yet" in json.loads(widget.payload)["waiting"]
    assert widget.selected.tolist() == []
