"""A word-level vocabulary and tokenizer for the text demo, without transformers: lower-case words and punctuation,
the BERT special tokens first, ids padded on the right after a leading [CLS].

Word-level because a model of a few hundred thousand weights learns words faster than word pieces, and because
each recorded token point is then a whole word a reader recognises; the vocabulary, a list of token strings by id,
is what layerlapse takes as `tokenizer=` to name token points.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(len(SPECIAL_TOKENS))
MAX_LENGTH = 48  # tokens, [CLS] and [SEP] included: most quotations fit (a median of about 30)
# a word (letters and digits, with an inner apostrophe: "don't") or one punctuation mark
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_")


def words(text: str) -> list[str]:
    """The tokens of a text: its lower-case words and punctuation marks, in order."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Token strings by id: the special tokens (ids 0–4: [PAD] [UNK] [CLS] [SEP] [MASK]), then words, most frequent
    first. `encode` turns texts into the `input_ids` and `attention_mask` a BERT takes; `decode` turns ids back.

    Examples
    --------
    >>> vocabulary = Vocabulary.build(["The cat sat.", "The dog sat!"], min_count=1)
    >>> encoded = vocabulary.encode(["the cat barked."], max_length=8)
    >>> vocabulary.decode(encoded["input_ids"][0])
    ['[CLS]', 'the', 'cat', '[UNK]', '.', '[SEP]', '[PAD]', '[PAD]']
    """

    tokens: tuple[str, ...]
    ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if tuple(self.tokens[:len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ConfigError(f"a vocabulary starts with the special tokens {SPECIAL_TOKENS}, got "
                              f"{tuple(self.tokens[:len(SPECIAL_TOKENS)])}")
        object.__setattr__(self, "ids", {token: index for index, token in enumerate(self.tokens)})

    @classmethod
    def build(cls, texts: Iterable[str], *, min_count: int = 2, most: int = 8000) -> Vocabulary:
        """The tokens seen at least `min_count` times in `texts` (a rarer word would keep an embedding its few
        sightings cannot train), at most `most` words, most frequent first (ties alphabetically, so the same texts
        give the same ids)."""
        counts = Counter(token for text in texts for token in words(text))
        frequent = sorted((token for token, count in counts.items() if count >= min_count and token not in
                           SPECIAL_TOKENS), key=lambda token: (-counts[token], token))
        return cls(SPECIAL_TOKENS + tuple(frequent[:most]))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, texts: Sequence[str], *, max_length: int = MAX_LENGTH) -> dict[str, np.ndarray]:
        """"input_ids" and "attention_mask" (int64, texts × max_length): [CLS], the text's tokens (unknown ones as
        [UNK], cut to fit), [SEP], then [PAD] on the right, where the mask is 0."""
        if max_length < 3:
            raise ConfigError(f"max_length must leave room for [CLS], a token and [SEP]: at least 3, got {max_length}")
        input_ids = np.full((len(texts), max_length), PAD, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.ids.get(token, UNK) for token in words(text)][:max_length - 2]
            input_ids[row, :len(ids) + 2] = [CLS, *ids, SEP]
        return {"input_ids": input_ids, "attention_mask": (input_ids != PAD).astype(np.int64)}

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The token strings of ids."""
        return [self.tokens[int(index)] for index in ids]
