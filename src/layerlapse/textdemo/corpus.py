"""Debian's `fortunes` as a topic-classification corpus: quotations read from the category files, cleaned, and split
into training, evaluation and probe items, all without transformers or torch.

A fortune file holds quotations separated by lines that hold only `%` (the format `strfile` indexes). Six categories
whose quotations are about clearly different things, and say nothing hurtful, are the classes; the whole folder
(every category) is the text the encoder is pre-trained on, less the evaluation and probe items, so the lapse starts
from an encoder that knows English words but was never told the topics.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DatasetError

# the classes: distinct topics, neutral in tone (no "men-women", "ethnic" or "drugs")
CATEGORIES = ("computers", "science", "food", "politics", "literature", "sports")
FORTUNES_ENV = "LAYERLAPSE_FORTUNES"
# where Debian's `fortunes` package puts the files, and where other systems do
DEFAULT_FOLDERS = (Path("/usr/share/games/fortunes"), Path("/usr/share/fortune"), Path("/usr/share/fortunes"))
LONGEST = 400  # characters: longer quotations (poems, dialogues, ASCII art) would be cut far past the model's length
_SEPARATOR = re.compile(r"^%[ \t]*$", flags=re.MULTILINE)
_NOT_FORTUNES = (".dat", ".u8", ".gz")  # strfile's index, UTF-8 twins and compressed copies beside each file


@dataclass(frozen=True, eq=False)
class Corpus:
    """Quotations of several fortune categories: `texts[i]` belongs to category `labels[i]`, a position in
    `class_names`; the folder they were read from."""

    texts: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    folder: Path

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        held = ", ".join(f"{name} {count}" for name, count in zip(self.class_names, counts))
        return f"Corpus({len(self)} quotations from {self.folder}: {held})"

    def counts(self) -> dict[str, int]:
        """Quotations per category."""
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(count) for name, count in zip(self.class_names, counts)}


@dataclass(frozen=True, eq=False)
class Split:
    """Which quotations of a corpus train, which evaluate, which are the probe: disjoint index arrays into it."""

    train: np.ndarray
    eval: np.ndarray
    probe: np.ndarray

    def __repr__(self) -> str:
        return f"Split(train={len(self.train)}, eval={len(self.eval)}, probe={len(self.probe)})"


def fortunes_folder(folder: str | os.PathLike | None = None) -> Path:
    """The folder holding the fortune files: `folder` when given, else $LAYERLAPSE_FORTUNES, else the first of the
    system's usual places that holds the categories. A folder without them is a one-line DatasetError with the fix."""
    chosen = folder if folder is not None else os.environ.get(FORTUNES_ENV) or None
    candidates = [Path(chosen)] if chosen is not None else list(DEFAULT_FOLDERS)
    for candidate in candidates:
        if all((candidate / name).is_file() for name in CATEGORIES):
            return candidate
    where = candidates[0]
    lacking = next((name for name in CATEGORIES if not (where / name).is_file()), CATEGORIES[0])
    raise DatasetError(f"the fortunes corpus is not in {where} (no file {lacking!r}): sudo apt-get install fortunes, "
                       f"or set {FORTUNES_ENV} to a folder holding its category files")


def clean(text: str) -> str:
    """One quotation on one line: its whitespace (newlines, the tabs before an attribution) collapsed to spaces."""
    return " ".join(text.split())


def read_fortunes(path: str | os.PathLike) -> list[str]:
    """The quotations of one fortune file, cleaned, in file order; empty ones and ones longer than LONGEST
    characters left out, a repeat kept once."""
    raw = Path(path).read_text(encoding="utf-8", errors="replace")
    quotations = (clean(part) for part in _SEPARATOR.split(raw))
    return list(dict.fromkeys(text for text in quotations if text and len(text) <= LONGEST))


def load_corpus(folder: str | os.PathLike | None = None, categories: tuple[str, ...] = CATEGORIES) -> Corpus:
    """The quotations of `categories` (the classes, in that order) from the fortunes folder.

    A quotation found in two categories says nothing about either and is left out of both.

    Parameters
    ----------
    folder : path, optional
        The folder of fortune files; default $LAYERLAPSE_FORTUNES, else where Debian's `fortunes` puts them.
    categories : tuple of str
        The category files that are the classes.
    """
    where = fortunes_folder(folder)
    by_category = {name: read_fortunes(where / name) for name in categories}
    seen = Counter(text for texts in by_category.values() for text in texts)
    texts, labels = [], []
    for label, name in enumerate(categories):
        kept = [text for text in by_category[name] if seen[text] == 1]
        texts += kept
        labels += [label] * len(kept)
    return Corpus(tuple(texts), np.asarray(labels, dtype=np.int64), tuple(categories), where)


def split_corpus(corpus: Corpus, *, probe_per_class: int = 40, eval_per_class: int = 25, seed: int = 0) -> Split:
    """A seeded split, stratified by category: `probe_per_class` quotations of each category are the probe (the
    points of the lapse), `eval_per_class` more evaluate, the rest train. The probe and the evaluation items are
    never trained on; the same seed gives the same split.

    Parameters
    ----------
    corpus : Corpus
        From `load_corpus`.
    probe_per_class, eval_per_class : int
        Items per category; each category must keep at least one training item.
    seed : int
        Seeds the shuffle within each category.
    """
    rng = np.random.default_rng(seed)
    train, evaluation, probe = [], [], []
    for label, name in enumerate(corpus.class_names):
        members = np.flatnonzero(corpus.labels == label)
        if len(members) <= probe_per_class + eval_per_class:
            raise ConfigError(f"category {name!r} has {len(members)} quotations, too few for {probe_per_class} probe "
                              f"and {eval_per_class} evaluation items and some to train on: ask for fewer")
        members = rng.permutation(members)
        probe.append(members[:probe_per_class])
        evaluation.append(members[probe_per_class:probe_per_class + eval_per_class])
        train.append(members[probe_per_class + eval_per_class:])
    return Split(*(np.sort(np.concatenate(part)) for part in (train, evaluation, probe)))


def pretraining_texts(folder: str | os.PathLike, held_out: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Every quotation of every fortune file in `folder` (all categories, not only the classes), cleaned, each once,
    less `held_out` (the evaluation and probe items, which the encoder must never have read)."""
    where = Path(folder)
    files = sorted(path for path in where.iterdir() if path.is_file() and not path.name.startswith(".")
                   and not path.name.endswith(_NOT_FORTUNES))
    texts = dict.fromkeys(text for path in files for text in read_fortunes(path))
    return [text for text in texts if text not in held_out]
