"""The text demo (`layerlapse demo --text`): the fortunes read, cleaned and split; the one-line messages for a missing
corpus and a missing transformers; the word-level vocabulary's round trip; that a BertLayer's `.output` submodule
returns exactly the layer's output (so the demo may read the mean there); and a small real run through the
Hugging Face Trainer and both callbacks (quotations and tokens), on a made-up corpus of six topics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from layerlapse.errors import ConfigError, DatasetError
from layerlapse.textdemo.corpus import (CATEGORIES, FORTUNES_ENV, LONGEST, fortunes_folder, load_corpus,
                                        pretraining_texts, read_fortunes, split_corpus)
from layerlapse.textdemo.settings import TextDemoSettings
from layerlapse.textdemo.vocabulary import CLS, PAD, SEP, SPECIAL_TOKENS, UNK, Vocabulary, words

MISSING = (r"^the fortunes corpus is not in .+ \(no file 'computers'\): sudo apt-get install fortunes, or set "
           r"LAYERLAPSE_FORTUNES to a folder holding its category files$")
# words of each made-up topic, and words every topic uses
TOPIC_WORDS = {"computers": "computer program bug kernel byte code unix disk", "science": "atom physics theory "
               "experiment energy light cell nature", "food": "bread cheese eat dinner cook soup taste wine",
               "politics": "vote senate law party president power tax war", "literature": "book poem novel "
               "writer story author read page", "sports": "game ball team win play score coach field"}
COMMON = "the a of is and to it in we never always".split()


def write_fortunes(folder: Path, quotations: dict[str, list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, texts in quotations.items():
        (folder / name).write_text("".join(f"{text}\n%\n" for text in texts))
    return folder


def made_up_corpus(folder: Path, per_topic: int = 40, seed: int = 0) -> Path:
    """Six topics of `per_topic` quotations each (topic words among common ones), and a seventh file, as the
    fortunes folder holds categories that are not classes."""
    rng = np.random.default_rng(seed)

    def quotation(topic_words: list[str]) -> str:
        chosen = [*rng.choice(topic_words, 4), *rng.choice(COMMON, 5)]
        return " ".join(rng.permutation(chosen)).capitalize() + "."

    texts = {name: list(dict.fromkeys(quotation(spoken.split()) for _ in range(per_topic * 2)))[:per_topic]
             for name, spoken in TOPIC_WORDS.items()}
    texts["wisdom"] = [quotation(COMMON) for _ in range(60)]
    return write_fortunes(folder, texts)


# ---- the corpus ---------------------------------------------------------------------------------------------------
def test_quotations_are_read_cleaned_and_kept_once(tmp_path: Path) -> None:
    path = tmp_path / "food"
    path.write_text("An apple a day\n\tkeeps the doctor away.\n\t\t-- Proverb\n%\n\n%\nAn apple a day keeps the "
                    "doctor away. -- Proverb\n%\n" + "x" * (LONGEST + 1) + "\n%   \nEat, drink.\n")
    assert read_fortunes(path) == ["An apple a day keeps the doctor away. -- Proverb", "Eat, drink."]


def test_the_corpus_reads_the_six_categories_and_drops_what_two_share(tmp_path: Path) -> None:
    texts = {name: [f"About {name}, number {index}." for index in range(3)] for name in CATEGORIES}
    texts["food"].append("About computers, number 0.")  # in two categories: neither's
    texts["cookie"] = ["A fortune of no class."]
    folder = write_fortunes(tmp_path / "fortunes", texts)
    (folder / "food.dat").write_bytes(b"\x00\x02binary index")
    corpus = load_corpus(folder)
    assert corpus.class_names == CATEGORIES and len(corpus) == 17
    assert corpus.counts() == {name: 2 if name == "computers" else 3 for name in CATEGORIES}
    assert corpus.texts[corpus.labels.tolist().index(2)] == "About food, number 0."
    assert "(17 quotations from" in repr(corpus)
    # pre-training reads every file but strfile's indexes, each quotation once, less the held-out ones
    every = pretraining_texts(folder, held_out={"About sports, number 2."})
    assert "A fortune of no class." in every and "About sports, number 2." not in every
    assert len(every) == 6 * 3 + 1 - 1 and not any("binary" in text for text in every)


def test_a_missing_corpus_is_one_line_naming_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetError, match=MISSING):
        load_corpus(tmp_path / "nowhere")
    monkeypatch.setenv(FORTUNES_ENV, str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match=MISSING) as caught:
        fortunes_folder()
    assert str(tmp_path / "empty") in str(caught.value)
    made_up_corpus(tmp_path / "made-up")
    monkeypatch.setenv(FORTUNES_ENV, str(tmp_path / "made-up"))
    assert fortunes_folder() == tmp_path / "made-up"  # the variable names the folder


def test_the_split_is_seeded_stratified_and_disjoint(tmp_path: Path) -> None:
    corpus = load_corpus(made_up_corpus(tmp_path / "fortunes"))
    split = split_corpus(corpus, probe_per_class=10, eval_per_class=5, seed=3)
    assert len(set(split.train) | set(split.eval) | set(split.probe)) == len(corpus)
    assert not set(split.train) & set(split.probe) and not set(split.train) & set(split.eval)
    assert np.bincount(corpus.labels[split.probe]).tolist() == [10] * 6
    assert np.bincount(corpus.labels[split.eval]).tolist() == [5] * 6
    again = split_corpus(corpus, probe_per_class=10, eval_per_class=5, seed=3)
    assert np.array_equal(again.probe, split.probe)
    other = split_corpus(corpus, probe_per_class=10, eval_per_class=5, seed=4)
    assert not np.array_equal(other.probe, split.probe)
    with pytest.raises(ConfigError, match=r"^category 'computers' has 40 quotations, too few for 30 probe and 10 "
                                          r"evaluation items and some to train on: ask for fewer$"):
        split_corpus(corpus, probe_per_class=30, eval_per_class=10)


# ---- the vocabulary -----------------------------------------------------------------------------------------------
def test_the_vocabulary_encodes_and_decodes_words_and_punctuation() -> None:
    assert words("Don't PANIC -- it's 42!") == ["don't", "panic", "-", "-", "it's", "42", "!"]
    vocabulary = Vocabulary.build(["The cat sat.", "The dog sat.", "A bird!"], min_count=2)
    assert vocabulary.tokens == (*SPECIAL_TOKENS, ".", "sat", "the")  # seen twice: by count, then alphabetically
    encoded = vocabulary.encode(["the cat sat.", "the the the the the the"], max_length=6)
    assert encoded["input_ids"].dtype == np.int64 and encoded["input_ids"].shape == (2, 6)
    assert vocabulary.decode(encoded["input_ids"][0]) == ["[CLS]", "the", "[UNK]", "sat", ".", "[SEP]"]
    assert encoded["input_ids"][1].tolist() == [CLS, 7, 7, 7, 7, SEP]  # cut to fit, [SEP] kept
    short = vocabulary.encode(["sat"], max_length=6)
    assert short["input_ids"][0].tolist() == [CLS, 6, SEP, PAD, PAD, PAD]
    assert short["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0]
    assert vocabulary.encode(["zebra"], max_length=4)["input_ids"][0, 1] == UNK
    with pytest.raises(ConfigError, match="starts with the special tokens"):
        Vocabulary(("the", "cat"))


def test_settings_are_checked_once() -> None:
    assert TextDemoSettings().recorded == {"bert.encoder.layer.0": "first", "bert.encoder.layer.0.output": "mean",
                                           "bert.encoder.layer.3": "first", "bert.encoder.layer.3.output": "mean"}
    with pytest.raises(ConfigError, match=r"^epochs must be a whole number of at least 1, got 0$"):
        TextDemoSettings(epochs=0)
    with pytest.raises(ConfigError, match="must be a multiple of num_heads"):
        TextDemoSettings(hidden_size=30, num_heads=4)
    with pytest.raises(ConfigError, match=r"^learning_rate must be a learning rate between 0 and 1, got 0$"):
        TextDemoSettings(learning_rate=0)
    with pytest.raises(ConfigError, match=r"^every must be 'epoch', 'log' or a whole number"):
        TextDemoSettings(every="often")  # refused before a minute of pre-training, not after


def test_the_corpus_and_vocabulary_import_neither_torch_nor_transformers() -> None:
    code = ("import sys, layerlapse, layerlapse.textdemo.corpus, layerlapse.textdemo.vocabulary, "
            "layerlapse.textdemo.settings; print(sorted({'torch', 'transformers'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


# ---- with transformers --------------------------------------------------------------------------------------------
def test_a_bert_layer_s_output_submodule_returns_exactly_the_layer_s_output() -> None:
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=16, num_labels=6)
    model = transformers.BertForSequenceClassification(config).eval()
    modules = dict(model.named_modules())
    seen: dict[str, torch.Tensor] = {}
    for name in TextDemoSettings(num_layers=4).recorded:
        modules[name].register_forward_hook(lambda module, inputs, output, name=name: seen.__setitem__(name, output))
    input_ids = torch.randint(5, 60, (3, 12), generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(12) < torch.tensor([[12], [7], [3]])).long()
    with torch.no_grad():
        hidden = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
    for block in (0, 3):
        layer, output = seen[f"bert.encoder.layer.{block}"], seen[f"bert.encoder.layer.{block}.output"]
        assert isinstance(layer, torch.Tensor) and torch.equal(layer, output)
        assert torch.equal(output, hidden[block + 1])  # the block's hidden states, as the model hands them on


def test_the_command_line_says_what_is_missing_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    script = ("import sys; {hide}from layerlapse.cli import main; sys.argv = ['layerlapse', 'demo', '--text', "
              "'--out', {out!r}]; main()")
    environment = {"PATH": "/usr/bin:/bin", FORTUNES_ENV: str(tmp_path / "empty"), "PYTHONPATH": ":".join(sys.path)}
    for hide, expected in (("", MISSING),
                           ("sys.modules['transformers'] = None; ", r"^transformers is not installed \(.*\): "
                                                                     r"pip install 'layerlapse\[transformers\]'$")):
        result = subprocess.run([sys.executable, "-c", script.format(hide=hide, out=str(tmp_path / "run"))],
                                capture_output=True, text=True, timeout=120, env=environment)
        assert result.returncode == 2, result.stderr
        line = result.stderr.strip()
        assert "\n" not in line and __import__("re").search(expected, line.removeprefix("error: ")), line
        assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo, small: a made-up corpus of 240 quotations, a BERT of width 16, a pre-training epoch, three of
    fine-tuning; both runs drawn."""
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")
    from layerlapse.textdemo.demo import run_text_demo

    folder = tmp_path_factory.mktemp("text")
    settings = TextDemoSettings(probe_per_class=10, eval_per_class=5, hidden_size=16, num_layers=2, num_heads=2,
                                intermediate_size=32, max_length=16, pretrain_epochs=1, epochs=3, batch_size=16,
                                learning_rate=3e-3, balance_to=0, token_items_per_class=2, min_count=1)
    run_text_demo(folder / "run", settings=settings, fortunes=made_up_corpus(folder / "fortunes"))
    return folder / "run"


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def test_a_small_text_demo_records_a_complete_run_of_quotations(text_run: Path) -> None:
    recorded = manifest(text_run)
    assert recorded["status"] == "complete"
    layers = ["bert.encoder.layer.0", "bert.encoder.layer.0.output", "bert.encoder.layer.1",
              "bert.encoder.layer.1.output"]
    assert recorded["layers"] == layers
    assert [recorded["layer_info"][layer]["reduction"] for layer in layers] == ["first", "mean"] * 2
    assert recorded["dataset"]["class_names"] == list(CATEGORIES)
    assert recorded["schedule"] == {"every": "log"}
    steps = [snapshot["step"] for snapshot in recorded["snapshots"]]
    assert steps[:4] == [0, 1, 2, 4] and steps[-1] == 30  # 3 epochs of 10 steps: 150 quotations in 16s
    assert {"val_acc", "loss"} <= set(recorded["history"][-1])  # each recorded step evaluated
    assert recorded["training"]["pretraining"] == "masked-LM" and recorded["training"]["pretrain_epochs"] == 1
    assert recorded["test"]["size"] == 30
    texts = json.loads((text_run / "probe" / "texts.json").read_text())
    assert len(texts) == 60 and texts[0].endswith(".")
    assert np.load(text_run / "activations/bert.encoder.layer.1/epoch_000.npy").shape == (60, 16)
    measured = json.loads((text_run / "dynamics" / "layers.json").read_text())
    assert set(measured["layers"]) == set(layers)
    assert len(measured["layers"]["bert.encoder.layer.1"]["cka_to_previous"]) == len(steps)
    for relpath in ("report.html", "lapse.gif", "metrics.json", "figures/layer_measures.png"):
        assert (text_run / relpath).is_file(), relpath


def test_a_small_text_demo_records_the_tokens_beside_it(text_run: Path) -> None:
    tokens = text_run.with_name("run-tokens")
    recorded = manifest(tokens)
    assert recorded["status"] == "complete"
    assert recorded["layers"] == ["bert.encoder.layer.0", "bert.encoder.layer.1"]
    assert recorded["dataset"]["points"] == "tokens" and recorded["dataset"]["items"] == 12
    points = recorded["dataset"]["probe_size"]
    assert np.load(tokens / "activations/bert.encoder.layer.1/epoch_000.npy").shape == (points, 16)
    assert (tokens / "report.html").is_file()


def test_debian_s_fortunes_give_the_counts_the_docs_state() -> None:
    try:
        folder = fortunes_folder()
    except DatasetError:
        pytest.skip("Debian's fortunes are not installed: sudo apt-get install fortunes")
    corpus = load_corpus(folder)
    assert corpus.counts() == {"computers": 869, "science": 537, "food": 175, "politics": 658, "literature": 235,
                               "sports": 115}  # docs/text.md
    split = split_corpus(corpus)
    assert (len(split.probe), len(split.eval)) == (240, 150)
    held_out = {corpus.texts[index] for index in (*split.eval, *split.probe)}
    assert len(pretraining_texts(folder, held_out)) == 13_396
