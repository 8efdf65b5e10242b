"""`layerlapse export --parquet`: a real run's tables, read back with pyarrow and checked cell by cell."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from layerlapse.store import layout
from layerlapse.errors import LayerlapseError

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is a dev dependency: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    from layerlapse.config import RunConfig
    from run_helpers import recorded_and_drawn

    path = tmp_path_factory.mktemp("tables") / "run"
    recorded_and_drawn(RunConfig(dataset="digits", epochs=2, probe=300, map_method="pca", layers=("hidden", "end")),
                       path)
    return path


def test_a_row_per_image_and_snapshot_holds_its_place_prediction_and_dynamics(digits_run: Path, tmp_path) -> None:
    from layerlapse.measures.dynamics import cartography_regions, probe_dynamics
    from layerlapse.store.run import load_run
    from layerlapse.export.parquet import write_parquet

    run = load_run(digits_run)
    written = write_parquet(run, tmp_path)
    assert [path.name for path in written] == ["hidden.parquet", "end.parquet"]
    table = pq.read_table(tmp_path / "end.parquet").to_pydict()
    n = 300
    assert len(table["x"]) == 3 * n and table["snapshot"] == [s for s in range(3) for _ in range(n)]
    assert table["probe_row"] == list(range(n)) * 3 and table["epoch"] == table["snapshot"]
    labels = run.probe_labels()
    assert table["label"] == list(labels) * 3 and table["label_name"][:3] == [run.class_names[k] for k in labels[:3]]
    assert table["dataset_index"][:n] == list(run.read_array(layout.PROBE_INDICES))
    found = probe_dynamics(run)
    regions = {1: "easy", 2: "ambiguous", 3: "hard", 0: ""}
    for s in range(3):
        rows = slice(s * n, (s + 1) * n)
        np.testing.assert_array_equal(np.asarray(table["x"][rows], dtype=np.float32),
                                      run.read_array(layout.map_file("end", s))[:, 0].astype(np.float32))
        probabilities = run.predictions(s)
        assert table["predicted"][rows] == list(probabilities.argmax(axis=1))
        np.testing.assert_allclose(table["confidence"][rows], probabilities.max(axis=1), rtol=1e-6)
        np.testing.assert_allclose(table["true_class_probability"][rows], probabilities[np.arange(n), labels],
                                   rtol=1e-6)
        np.testing.assert_allclose(table["variability"][rows], found.variability, rtol=1e-6)
        assert table["forgetting_events"][rows] == list(found.forgetting_events)
        assert table["region"][rows] == [regions[int(code)] for code in cartography_regions(found.confidence,
                                                                                              found.variability)]
    run.close()


def test_the_command_writes_the_tables_into_the_run_and_names_them(digits_run: Path, main_here) -> None:
    result = main_here("export", "--parquet", digits_run, "--layer", "hidden")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote hidden.parquet to {digits_run / 'tables'}"
    assert pq.read_table(digits_run / "tables" / "hidden.parquet").num_rows == 900


def test_without_pyarrow_the_error_says_how_to_install_it(digits_run: Path, tmp_path, monkeypatch) -> None:
    from layerlapse.store.run import load_run
    from layerlapse.export.parquet import write_parquet

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # an import of it fails, as where it is not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(LayerlapseError, match=r"writing Parquet needs pyarrow: pip install 'layerlapse\[parquet\]'"):
        write_parquet(load_run(digits_run), tmp_path)
    assert list(tmp_path.iterdir()) == []
