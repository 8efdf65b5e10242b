"""Tokens as points (reduce="tokens"): a small transformer's sequence layer recorded as one point per real token,
each knowing its item, position and text, carrying its item's label and prediction; the report, the Parquet table
and the maps take them as any run's points; each bad request refused in one line before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from layerlapse import Recorder, load_run
from layerlapse.capture import tokens as token_module
from layerlapse.errors import ConfigError

VOCAB = ["[PAD]", "[CLS]", *(f"w{i}" for i in range(30))]
ITEMS, LENGTH = 40, 8


class TinyEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), 16)
        self.encoder = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0)
        self.head = nn.Linear(16, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        return self.head(hidden[:, 0])


def tokenised() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Items of 3 to 8 tokens, [CLS] first, padded on the right; the class is the second token's parity."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(2, len(VOCAB), (ITEMS, LENGTH), generator=generator)
    ids[:, 0] = 1
    lengths = torch.randint(3, LENGTH + 1, (ITEMS,), generator=generator)
    mask = (torch.arange(LENGTH)[None] < lengths[:, None]).long()
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask}, ids[:, 1] % 2


def record(out: Path, probe=None, epochs: int = 2, **settings) -> tuple[Path, TinyEncoder]:
    torch.manual_seed(0)
    batch, labels = tokenised()
    model = TinyEncoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    settings = {"layers": ["encoder"], "reduce": "tokens", "tokenizer": VOCAB, **settings}
    recorder = Recorder(model, probe=batch if probe is None else probe, labels=labels, out=out,
                        class_names=["even", "odd"], **settings)
    recorder.start()
    for epoch in range(1, epochs + 1):
        for _ in range(10):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(**batch), labels).backward()
            optimizer.step()
        recorder.epoch_end(epoch, metrics={"loss": 0.0})
    return recorder.finish().path, model


@pytest.fixture(scope="module")
def token_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TinyEncoder]:
    return record(tmp_path_factory.mktemp("tokens") / "run", epochs=3)


def test_every_real_token_is_a_point_with_its_item_position_and_text(token_run) -> None:
    path, _ = token_run
    run = load_run(path)
    batch, labels = tokenised()
    real = batch["attention_mask"].bool()
    n = int(real.sum())
    table = run.read_json("probe/tokens.json")
    items, positions = (index.tolist() for index in torch.nonzero(real, as_tuple=True))
    assert table["item"] == items and table["position"] == positions
    assert table["token"] == [VOCAB[i] for i in batch["input_ids"][real].tolist()]
    assert run.manifest["dataset"]["points"] == "tokens" and run.manifest["dataset"]["items"] == ITEMS
    assert len(run.probe_labels()) == n and run.manifest["config"]["probe"] == n
    assert (run.probe_labels() == labels.numpy()[items]).all()  # each token carries its item's label
    texts = run.probe_texts()
    point = items.index(5) + 2  # item 5's third token
    word = VOCAB[int(batch["input_ids"][5, 2])]
    assert texts[point].startswith(f"‹{word}›  ·  [CLS] ") and f" ‹{word}› " in texts[point]
    assert run.manifest["layer_info"]["encoder"]["caption"] == "one point per real token, padding left out"


def test_the_token_rows_are_the_layer_s_outputs_at_the_real_tokens(token_run) -> None:
    path, model = token_run
    run = load_run(path)
    batch, _ = tokenised()
    model.eval()
    with torch.no_grad():
        hidden = model.encoder(model.embed(batch["input_ids"]),
                               src_key_padding_mask=batch["attention_mask"] == 0)
        scores = torch.softmax(model(**batch), dim=1)
    last = run.epochs_complete
    stored = np.asarray(run.activations("encoder", last), dtype=np.float32)
    np.testing.assert_allclose(stored, hidden[batch["attention_mask"].bool()].numpy(), atol=2e-2)
    items = run.read_json("probe/tokens.json")["item"]
    np.testing.assert_allclose(run.predictions(last), scores.numpy()[items], atol=1e-5)


def test_the_token_run_is_mapped_and_reported(token_run) -> None:
    path, _ = token_run
    run = load_run(path)
    assert run.status == "complete"
    from layerlapse.report.page import page_payload

    page = (path / "report.html").read_text(encoding="utf-8")
    data = page_payload(page)
    assert data["itemWord"] == "tokens"  # the page says "probe token #N" on hover, "the selected tokens"
    assert f"{len(run.probe_labels())} tokens of {ITEMS} probe items" in page
    assert json.loads(bytes(data["probe"]["texts"]).decode("utf-8")) == run.probe_texts()
    n = len(run.probe_labels())
    assert run.read_xy(f"maps/encoder/epoch_{run.epochs_complete:03d}.npy", n).shape == (n, 2)


@pytest.mark.parametrize("settings, message", [
    ({"tokenizer": None}, r"^reduce='tokens' needs the tokens' text: pass tokenizer=\.\.\. "),
    ({"tokenizer": VOCAB[:10]}, r"^the probe holds token id \d+ but the tokenizer's list names 10 tokens"),
    ({"layers": ["encoder", "head"], "reduce": {"encoder": "tokens", "head": "flatten"}},
     r"^reduce='tokens' makes a run's points tokens, but layers \['head'\] are recorded per item: record the "
     r"token layers in a run of their own"),
    ({"layers": ["head"]}, r"^reduce='tokens' takes one row per token of a \(tokens, features\) output, but layer "
                           r"'head' outputs \(2,\) per input"),
    ({"test_set": tokenised()[0], "test_labels": tokenised()[1]},
     r"^reduce='tokens' records the probe's tokens, not the test set: record those in the run of items"),
])
def test_bad_token_requests_are_refused_in_one_line(tmp_path: Path, settings, message) -> None:
    with pytest.raises(ConfigError, match=message):
        record(tmp_path / "run", **settings)
    assert not (tmp_path / "run" / "snapshots").exists()


def test_a_probe_that_is_not_tokenised_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^reduce='tokens' takes a tokenised probe, a dict with \"input_ids\""):
        record(tmp_path / "run", probe=torch.zeros(ITEMS, LENGTH, dtype=torch.long))
    assert not (tmp_path / "run").exists()


def test_too_many_tokens_are_refused_naming_how_many_items_fit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(token_module, "MAX_TOKEN_POINTS", 100)
    with pytest.raises(ConfigError, match=r"^the probe holds \d+ real tokens but a run of tokens maps at most 100: "
                                          r"give it fewer or shorter items \(e\.g\. the first \d+\)"):
        record(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_parquet_table_of_tokens_has_their_text(token_run, tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    from layerlapse.export.parquet import write_parquet

    path, _ = token_run
    run = load_run(path)
    written = write_parquet(run, tmp_path)
    table = pandas.read_parquet(written[0])
    assert table.text.str.startswith("‹").all()
    assert json.loads((path / "probe" / "tokens.json").read_text())["token"][0] == "[CLS]"


def test_keras_refuses_token_points_in_one_line() -> None:
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras_callback = pytest.importorskip("layerlapse.integrations.keras")
    with pytest.raises(ConfigError, match=r"^reduce='tokens' \(a point per token\) is recorded from PyTorch models"):
        keras_callback.LayerlapseCallback(["dense"], np.zeros((4, 3), np.float32), [0, 1, 0, 1], "unused",
                                          class_names=["a", "b"], reduce="tokens")
