"""Texts as a run keeps them: one string per probe item, the item itself for a text model (a quotation, a review) or
a short caption the user gives for any other data (an audio clip's file name, a table row's id). The report shows
them on hover, on a pinned point and in the lists and strips, always as text (escaped, never markup); the Parquet
tables carry them as a column; `layerlapse dynamics` prints them.

A run stores them as probe/texts.json, a JSON list of strings: JSON is UTF-8 by definition and holds any text
safely. Each text is bounded (MAX_TEXT_CHARS), so a probe of long documents stays a page that opens; control
characters other than tab and newline are replaced, so no text can move a terminal's cursor or hide in a table.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, RecordingWarning

# characters of one item's text kept: a paragraph, about what a hover card shows (longer texts end in "…")
MAX_TEXT_CHARS = 1_000
# C0 and C1 control characters but tab and newline, and the bidirectional overrides that can reorder what a
# reader sees: each becomes U+FFFD, visible where it was
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def checked_texts(texts: Any, count: int, what: str = "texts") -> list[str]:
    """`texts` as a run stores them: one str per item, `count` of them, each made safe to show and bounded; one
    line naming the problem and the fix for anything else. Texts cut to MAX_TEXT_CHARS are counted in one warning.

    Parameters
    ----------
    texts : sequence of str or bytes
        One text per probe item, in the probe's order; bytes must be UTF-8.
    count : int
        How many items the probe holds.
    what : str
        The argument's name, for the messages.
    """
    if isinstance(texts, (str, bytes)) or not isinstance(texts, (Sequence, np.ndarray)):
        raise ConfigError(f"{what} must be a list of strings, one per probe item, got {type(texts).__name__}: "
                          f"e.g. {what}=[\"first item's text\", ...]")
    if len(texts) != count:
        raise ConfigError(f"{what} holds {len(texts):,} texts for {count:,} probe items: give one text per item, in "
                          "the probe's order")
    kept = [_as_str(text, position, what) for position, text in enumerate(texts)]
    cut = sum(len(text) > MAX_TEXT_CHARS for text in kept)
    kept = [shown_text(text) for text in kept]
    if cut:
        warnings.warn(f"{cut:,} of the {what} are longer than {MAX_TEXT_CHARS:,} characters and are kept cut to "
                      f"that: give shorter texts (a caption) to keep them whole", RecordingWarning, stacklevel=3)
    return kept


def _as_str(text: Any, position: int, what: str) -> str:
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{what}[{position}] is not UTF-8 ({error.reason} at byte {error.start}): decode it "
                              "with its own encoding first, e.g. data.decode('latin-1')") from None
    if isinstance(text, np.str_):
        return str(text)
    if not isinstance(text, str):
        raise ConfigError(f"{what}[{position}] is {type(text).__name__}, not a string: give one str per probe item")
    return text


def stored_texts(texts: Any, count: int) -> list[str] | None:
    """A run's stored texts as the page and the exports show them, or None where the file is not one str per item
    (a damaged or foreign file is shown as no texts, never as markup or as a wall of text)."""
    if not isinstance(texts, list) or len(texts) != count or not all(isinstance(text, str) for text in texts):
        return None
    return [shown_text(text) for text in texts]


def shown_text(text: str) -> str:
    """A text as a run keeps and shows it: cut to MAX_TEXT_CHARS (ending in "…"), its unsafe characters replaced."""
    return _UNSAFE.sub("\ufffd", text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS - 1] + "…")
