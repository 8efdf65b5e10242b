"""`layerlapse demo --text`, as one function: the fortunes read and split, a vocabulary built, a small BERT
pre-trained with masked-LM, then fine-tuned by a Hugging Face `Trainer` to tell six categories apart while
layerlapse's `LayerlapseCallback` records a lower and the top encoder block at log-spaced steps.

The steps, each a function of its own module: `corpus.load_corpus` → `corpus.split_corpus` →
`vocabulary.Vocabulary.build` → `model.pretrain` → `model.classifier_from` → `finetune` (here). The run folder is the
callback's: maps, frames, lapse.gif, report.html, and the layer measures (dynamics/layers.json, metrics.json).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RunConfig
from ..integrations import require
from ..store.run import RunFolder, load_run
from .corpus import Corpus, Split, load_corpus, pretraining_texts, split_corpus
from .model import bert_config, classifier_from, masked_lm_accuracy, pretrain, transformers
from .settings import TextDemoSettings
from .vocabulary import PAD, Vocabulary

require("accelerate", "transformers", (1, 1), what="accelerate (which transformers' Trainer needs)")
from ..integrations.transformers import LayerlapseCallback  # noqa: E402  (after the install hints)

DATASET = "fortunes: computers, science, food, politics, literature, sports"


@dataclass(frozen=True, eq=False)
class TextData:
    """Everything the fine-tuning reads: the corpus, its split, the vocabulary and the pre-training texts."""

    corpus: Corpus
    split: Split
    vocabulary: Vocabulary
    pretraining: tuple[str, ...]

    def texts(self, indices: np.ndarray) -> list[str]:
        return [self.corpus.texts[index] for index in indices]


def prepare_data(settings: TextDemoSettings, fortunes: str | os.PathLike | None = None) -> TextData:
    """The corpus read and split, the pre-training texts (every fortune but the evaluation and probe items) and the
    vocabulary built from them."""
    corpus = load_corpus(fortunes)
    split = split_corpus(corpus, probe_per_class=settings.probe_per_class, eval_per_class=settings.eval_per_class,
                         seed=settings.seed)
    held_out = {corpus.texts[index] for index in (*split.eval, *split.probe)}
    texts = pretraining_texts(corpus.folder, held_out)[:settings.pretrain_texts]
    vocabulary = Vocabulary.build(texts, min_count=settings.min_count, most=settings.vocabulary_size)
    return TextData(corpus, split, vocabulary, tuple(texts))


def run_text_demo(out: str | os.PathLike = "runs/text", *, settings: TextDemoSettings = TextDemoSettings(),
                  fortunes: str | os.PathLike | None = None, config: RunConfig | None = None, force: bool = True,
                  show_progress: bool = False) -> RunFolder:
    """The whole text demo: returns the complete run folder of quotations (its run of tokens beside it,
    `tokens_folder(out)`).

    Parameters
    ----------
    out : path
        The run folder; replaced when it holds an earlier run and `force` is true.
    settings : TextDemoSettings
        Sizes and lengths of training; the defaults are the demo's.
    fortunes : path, optional
        The folder of fortune files; default $LAYERLAPSE_FORTUNES, else Debian's /usr/share/games/fortunes.
    config : RunConfig, optional
        The maps' settings (method, neighbours, seed); the callbacks' default when None.
    force : bool
        Replace earlier runs in the run folders.
    show_progress : bool
        Progress bars on a terminal while it pre-trains and fine-tunes, and the Trainer's logs (loss and accuracy
        at each recorded step) on stdout.
    """
    data = prepare_data(settings, fortunes)
    bert = bert_config(data.vocabulary, settings, data.corpus.class_names)
    encoder = pretrain(bert, data.vocabulary.encode(data.pretraining, max_length=settings.max_length), settings,
                       show_progress=show_progress)
    held_out = data.vocabulary.encode(data.texts(data.split.eval), max_length=settings.max_length)
    pretraining = {"pretraining": "masked-LM", "pretrain_texts": len(data.pretraining),
                   "pretrain_epochs": settings.pretrain_epochs, "vocabulary": len(data.vocabulary),
                   "masked_lm_accuracy": round(masked_lm_accuracy(encoder, held_out, settings.seed), 4)}
    recording = {"training": pretraining, "force": force, "config": config}
    callbacks = [recording_callback(data, settings, out, **recording)]
    if settings.token_items_per_class:
        callbacks.append(tokens_callback(data, settings, tokens_folder(out), **recording))
    finetune(classifier_from(encoder, bert, settings.seed), data, settings, [*callbacks, EvaluateWhenRecorded(callbacks[0])],
             show_progress=show_progress)
    return load_run(out)


def tokens_folder(out: str | os.PathLike) -> Path:
    """The run of tokens' folder: beside the run of quotations, its name with "-tokens" ("runs/text-tokens")."""
    out = Path(out)
    return out.with_name(f"{out.name}-tokens")


def recording_callback(data: TextData, settings: TextDemoSettings, out: str | os.PathLike, *,
                       training: dict[str, Any], force: bool, config: RunConfig | None) -> LayerlapseCallback:
    """The layerlapse callback: the lower and the top block, first token and mean, for the probe quotations, at
    the settings' steps; the evaluation quotations as the test set placed on the last maps."""
    probe = encoded_items(data, data.split.probe, settings)
    return LayerlapseCallback(list(settings.recorded), probe=probe, out=out, texts=data.texts(data.split.probe),
                              class_names=data.corpus.class_names, dataset=DATASET,
                              test_set=encoded_items(data, data.split.eval, settings), every=settings.every,
                              reduce=settings.recorded, training=training, config=config, force=force)


def tokens_callback(data: TextData, settings: TextDemoSettings, out: str | os.PathLike, *,
                    training: dict[str, Any], force: bool, config: RunConfig | None) -> LayerlapseCallback:
    """A second callback: the same two blocks once per real token of the first `token_items_per_class` probe
    quotations of each category, the tokens named by the vocabulary."""
    labels = data.corpus.labels[data.split.probe]
    chosen = np.concatenate([data.split.probe[labels == label][:settings.token_items_per_class]
                             for label in range(len(data.corpus.class_names))])
    blocks = [layer for layer, how in settings.recorded.items() if how == "first"]
    return LayerlapseCallback(blocks, probe=encoded_items(data, chosen, settings), out=out,
                              texts=data.texts(chosen), class_names=data.corpus.class_names,
                              dataset=f"{DATASET} (tokens)", every=settings.every, reduce="tokens",
                              tokenizer=list(data.vocabulary.tokens), training=training, config=config,
                              force=force)


def encoded_items(data: TextData, indices: np.ndarray, settings: TextDemoSettings) -> dict[str, torch.Tensor]:
    """Quotations as the model takes them, with their labels: input_ids, attention_mask, labels."""
    encoded = data.vocabulary.encode(data.texts(indices), max_length=settings.max_length)
    return {**{name: torch.from_numpy(array) for name, array in encoded.items()},
            "labels": torch.from_numpy(data.corpus.labels[indices])}


def balanced(indices: np.ndarray, labels: np.ndarray, balance_to: int) -> np.ndarray:
    """The training indices with each category's repeated (whole copies, then a first part) up to about
    `balance_to`; a category already that large is left as it is. The Trainer shuffles them."""
    if balance_to == 0:
        return indices
    parts = []
    for label in np.unique(labels[indices]):
        members = indices[labels[indices] == label]
        parts.append(np.resize(members, max(len(members), balance_to)))
    return np.concatenate(parts)


class ItemList(torch.utils.data.Dataset):
    """Training items as the Trainer takes them: one dict of unpadded input_ids and the label each."""

    def __init__(self, input_ids: np.ndarray, attention_mask: np.ndarray, labels: np.ndarray) -> None:
        self.items = [{"input_ids": ids[mask.astype(bool)], "labels": int(label)}
                      for ids, mask, label in zip(input_ids, attention_mask, labels)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]


def pad_batch(features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """A batch padded on the right to its longest text, with its attention mask and labels."""
    longest = max(len(feature["input_ids"]) for feature in features)
    input_ids = torch.full((len(features), longest), PAD, dtype=torch.long)
    for row, feature in enumerate(features):
        input_ids[row, :len(feature["input_ids"])] = torch.as_tensor(feature["input_ids"])
    return {"input_ids": input_ids, "attention_mask": (input_ids != PAD).long(),
            "labels": torch.tensor([feature["labels"] for feature in features])}


def item_list(data: TextData, indices: np.ndarray, settings: TextDemoSettings) -> ItemList:
    encoded = data.vocabulary.encode(data.texts(indices), max_length=settings.max_length)
    return ItemList(encoded["input_ids"], encoded["attention_mask"], data.corpus.labels[indices])


def accuracy(prediction: Any) -> dict[str, float]:
    """The Trainer's evaluation metric: the share of evaluation quotations whose category the model names."""
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


class EvaluateWhenRecorded(transformers.TrainerCallback):
    """Evaluates (and logs) at every step the layerlapse callback records and at the last one, so each snapshot of
    the lapse carries the evaluation accuracy of the network it shows; the Trainer itself evaluates only at fixed
    intervals, and log-spaced steps are not."""

    def __init__(self, recording: LayerlapseCallback) -> None:
        self.schedule = recording.schedule

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.schedule.due_at_step(state.global_step) or state.global_step >= state.max_steps:
            control.should_evaluate = control.should_log = True
        return control


def finetune(model: Any, data: TextData, settings: TextDemoSettings, callbacks: list,
             show_progress: bool = False) -> Any:
    """The classifier fine-tuned by a Hugging Face Trainer on the (balanced) training quotations, evaluated on the
    evaluation ones; checkpoints and logs go to a temporary folder, nothing is reported anywhere."""
    train = balanced(data.split.train, data.corpus.labels, settings.balance_to)
    with tempfile.TemporaryDirectory(prefix="layerlapse-text-") as scratch:
        args = transformers.TrainingArguments(
            output_dir=scratch, num_train_epochs=settings.epochs, per_device_train_batch_size=settings.batch_size,
            per_device_eval_batch_size=256, learning_rate=settings.learning_rate, warmup_steps=0.1,
            weight_decay=0.01, seed=settings.seed, use_cpu=True, report_to=[], save_strategy="no",
            eval_strategy="no", logging_strategy="no", dataloader_num_workers=0,
            disable_tqdm=not (show_progress and sys.stderr.isatty()))  # a bar redrawn in a log file is noise
        with _quiet_transformers():  # it warns of a second LayerlapseCallback, which the run of tokens is
            trainer = transformers.Trainer(model=model, args=args, train_dataset=item_list(data, train, settings),
                                           eval_dataset=item_list(data, data.split.eval, settings),
                                           data_collator=pad_batch, compute_metrics=accuracy, callbacks=callbacks)
        if not show_progress:  # quiet: not even the logs the Trainer prints as dicts when it draws no bar
            trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
        try:
            trainer.train()
        finally:
            for callback in callbacks:
                if isinstance(callback, LayerlapseCallback):
                    callback.close()  # a train() that raised leaves the run failed (resumable), its lock given back
    return trainer


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' own warnings silenced for a moment (its logging is global state: given back after)."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
