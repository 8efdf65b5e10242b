"""Probe items of any kind: a text (or caption) per item, given as texts= or carried in a dict probe's "text" entry,
stored as probe/texts.json, exported as the Parquet tables' text column and printed by `layerlapse dynamics`; each bad
input refused in one line before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from layerlapse import Recorder
from layerlapse.errors import ConfigError, RecordingWarning
from layerlapse.store.texts import MAX_TEXT_CHARS, checked_texts

from run_helpers import recorded_loop

LAYERLAPSE = Path(sys.executable).parent / "layerlapse"
N = 60


def data() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(N, 6)
    return x, (x[:, 0] > 0).long()


def record(out: Path, texts, probe=None, epochs: int = 2, **settings) -> Path:
    """A small MLP trained a few steps, recorded with texts, mapped and drawn."""
    x, y = data()
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 2))
    return recorded_loop(model, x, y, ["1"], out, epochs=epochs, steps=5, lr=0.5, probe=x if probe is None else probe,
                         texts=texts, class_names=["no", "yes"], **settings).path


QUOTES = [f"quote {i}: <b>bold</b> & [red]markup[/red]" for i in range(N)]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory.mktemp("texts") / "run", QUOTES, epochs=3)


def test_the_texts_are_stored_as_given_and_read_back(text_run: Path) -> None:
    from layerlapse import load_run

    run = load_run(text_run)
    assert run.probe_texts() == QUOTES
    assert json.loads((text_run / "probe" / "texts.json").read_text()) == QUOTES


def test_the_parquet_tables_carry_the_text_column(text_run: Path, tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    done = subprocess.run([str(LAYERLAPSE), "export", "--parquet", str(text_run), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    table = pandas.read_parquet(tmp_path / "1.parquet")
    assert list(table.text[table.probe_row == 7])[0] == QUOTES[7]
    assert (table.text == np.asarray(QUOTES, dtype=object)[table.probe_row]).all()


def test_dynamics_lists_the_items_texts_as_text_not_markup(text_run: Path) -> None:
    done = subprocess.run([str(LAYERLAPSE), "dynamics", str(text_run), "--top", "3"], capture_output=True,
                          text=True, timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "probe items" in done.stdout
    assert "<b>bold</b> & [red]markup[/red]" in done.stdout  # rich printed the brackets, did not read them
    found = json.loads(subprocess.run([str(LAYERLAPSE), "dynamics", str(text_run), "--json"], capture_output=True,
                                      text=True, timeout=300).stdout)
    assert all(row["text"] == QUOTES[row["index"]] for row in found["hardest"])


def test_a_dict_probe_carries_its_own_texts(tmp_path: Path) -> None:
    x, _ = data()

    class Keyword(nn.Module):  # a model called as model(**probe), with a keyword its texts must not reach
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 2))

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return self.body(features)

    model = Keyword()
    recorder = Recorder(model, ["body.1"], {"features": x, "text": QUOTES}, data()[1], tmp_path / "run",
                        class_names=["no", "yes"], draw=False)
    recorder.start()
    run = recorder.finish()
    assert run.probe_texts() == QUOTES


def test_control_characters_are_replaced_and_html_kept_as_text() -> None:
    kept = checked_texts(["a\x1b[31mred\x00", "tab\tand\nline", "<script>x</script>", "rtl\u202eevil"], 4)
    assert kept == ["a\ufffd[31mred\ufffd", "tab\tand\nline", "<script>x</script>", "rtl\ufffdevil"]


def test_a_10_mb_text_is_kept_cut_with_a_warning(tmp_path: Path) -> None:
    texts = list(QUOTES)
    texts[5] = "word " * 2_000_000
    with pytest.warns(RecordingWarning, match=r"1 of the texts are longer than 1,000 characters"):
        run = record(tmp_path / "run", texts, epochs=1, draw=False)
    from layerlapse import load_run

    stored = load_run(run).probe_texts()
    assert len(stored[5]) == MAX_TEXT_CHARS and stored[5].endswith("…")
    assert (run / "probe" / "texts.json").stat().st_size < 100_000


@pytest.mark.parametrize("texts, message", [
    (QUOTES[:-1], r"^texts holds 59 texts for 60 probe items: give one text per item, in the probe's order$"),
    ([*QUOTES[:-1], b"caf\xe9"], r"^texts\[59\] is not UTF-8 \(unexpected end of data at byte 3\): decode it "
                                 r"with its own encoding first"),
    ([*QUOTES[:-1], 7], r"^texts\[59\] is int, not a string: give one str per probe item$"),
    ("one string", r"^texts must be a list of strings, one per probe item, got str"),
])
def test_bad_texts_are_refused_in_one_line_before_anything_is_written(tmp_path: Path, texts, message) -> None:
    with pytest.raises(ConfigError, match=message):
        record(tmp_path / "run", texts)
    assert not (tmp_path / "run").exists()


def test_texts_given_both_ways_must_agree(tmp_path: Path) -> None:
    x, y = data()
    with pytest.raises(ConfigError, match=r"^the probe's texts differ from the texts it carries in its \"text\" "
                                          r"entry: give them one way"):
        Recorder(nn.Sequential(nn.Linear(6, 2)), ["0"], {"input": x, "text": QUOTES}, y, tmp_path / "run", texts=QUOTES[::-1],
                 class_names=["no", "yes"])
    assert not (tmp_path / "run").exists()


def test_utf8_bytes_are_decoded() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checked_texts(["café".encode(), np.str_("naïve")], 2) == ["café", "naïve"]


def test_the_tensorboard_metadata_carries_each_text_on_its_own_row(text_run: Path, tmp_path: Path) -> None:
    from layerlapse import load_run
    from layerlapse.export.tensorboard import metadata_columns, metadata_tsv

    run = load_run(text_run)
    columns = metadata_columns(run, "1", run.epochs_complete, N)
    assert columns["text"] == QUOTES
    lines = metadata_tsv({**columns, "text": ["two\nlines\tand a tab", *QUOTES[1:]]}).splitlines()
    assert len(lines) == N + 1 and lines[1].split("\t")[list(columns).index("text")] == "two lines and a tab"


def test_a_dataset_of_dicts_carries_its_texts_as_hugging_face_datasets_do(tmp_path: Path) -> None:
    x, y = data()

    class Items(torch.utils.data.Dataset):  # dicts of tensors, labels and a text, as a tokenised dataset's rows
        def __len__(self) -> int:
            return N

        def __getitem__(self, i: int) -> dict:
            return {"features": x[i], "labels": y[i], "text": QUOTES[i]}

    class Keyword(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(6, 2))

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return self.body(features)

    recorder = Recorder(Keyword(), ["body.0"], Items(), out=tmp_path / "run", class_names=["no", "yes"], draw=False,
                        batch_size=16)
    recorder.start()
    assert recorder.finish().probe_texts() == QUOTES


def test_a_notebook_selection_table_has_the_items_texts(text_run: Path) -> None:
    pytest.importorskip("pandas")
    from layerlapse import load_run
    from layerlapse.notebook.selection import selection_table

    table = selection_table(load_run(text_run), [3, 0, 59])
    assert list(table.text) == [QUOTES[3], QUOTES[0], QUOTES[59]]
