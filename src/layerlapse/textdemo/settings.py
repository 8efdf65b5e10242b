"""The text demo's settings, one frozen dataclass checked once: the split, the encoder's size, the masked-LM
pre-training and the fine-tuning. The defaults are the demo's (a few minutes on 2 CPU cores); the tests shrink them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..capture.spec import Schedule
from ..errors import ConfigError
from .vocabulary import MAX_LENGTH

# the fields that may be 0: no balancing, no pre-training (a fine-tuning from random weights), seed 0, no tokens
_MAY_BE_ZERO = ("balance_to", "pretrain_epochs", "seed", "token_items_per_class")


@dataclass(frozen=True)
class TextDemoSettings:
    """What the text demo trains, and how long.

    Parameters
    ----------
    probe_per_class, eval_per_class : int
        Quotations of each category recorded (the lapse's points) and evaluated on; never trained on.
    hidden_size, num_layers, num_heads, intermediate_size : int
        The BERT encoder's width, blocks, attention heads and feed-forward width.
    max_length : int
        Tokens a quotation is cut or padded to, [CLS] and [SEP] included.
    min_count, vocabulary_size : int
        A word enters the vocabulary when the pre-training texts hold it this often; at most this many words.
    pretrain_epochs, pretrain_batch_size, pretrain_learning_rate : int, int, float
        The masked-LM pre-training on every fortune but the evaluation and probe items.
    pretrain_texts : int or None
        Pre-train on the first this many of those texts only (the tests' short run); None: all.
    epochs, batch_size, learning_rate : int, int, float
        The fine-tuning with the Trainer.
    balance_to : int
        Repeat a category's training quotations until it has about this many, so the smallest categories are seen
        about as often as the largest (the fortunes hold 869 on computers but 115 on sports); 0: as they come.
    token_items_per_class : int
        Probe quotations of each category whose every token is also recorded, in a run of tokens of its own beside
        the run of quotations (`reduce="tokens"`); 0: no run of tokens.
    every : str or int
        When snapshots are taken (the callback's `every`): "log" gives steps 0, 1, 2, 4, 8, …, the early steps where
        fine-tuning moves the representation most.
    seed : int
        Seeds the split, the weights, the masking and the Trainer.
    """

    probe_per_class: int = 40
    eval_per_class: int = 25
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 256
    max_length: int = MAX_LENGTH
    min_count: int = 2
    vocabulary_size: int = 8000
    pretrain_epochs: int = 3
    pretrain_batch_size: int = 64
    pretrain_learning_rate: float = 1e-3
    pretrain_texts: int | None = None
    epochs: int = 6
    batch_size: int = 32
    learning_rate: float = 1e-3
    balance_to: int = 400
    token_items_per_class: int = 5
    every: str | int = "log"
    seed: int = 0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):  # the annotations are strings (postponed): "int", "float", …
            value = getattr(self, field.name)
            if field.type == "int":
                least = 0 if field.name in _MAY_BE_ZERO else 1
                if isinstance(value, bool) or not isinstance(value, int) or value < least:
                    raise ConfigError(f"{field.name} must be a whole number of at least {least}, got {value!r}")
            elif field.type == "float" and not (isinstance(value, (int, float)) and 0 < value < 1):
                raise ConfigError(f"{field.name} must be a learning rate between 0 and 1, got {value!r}")
        if self.pretrain_texts is not None and (not isinstance(self.pretrain_texts, int) or self.pretrain_texts < 1):
            raise ConfigError(f"pretrain_texts must be a whole number of at least 1, or None, got "
                              f"{self.pretrain_texts!r}")
        Schedule(self.every)  # the callback's own check, now rather than after pre-training
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads}")
        if self.num_layers < 2:
            raise ConfigError(f"num_layers must be at least 2 (a lower and a top block are recorded), got "
                              f"{self.num_layers}")

    def replace(self, **changes: Any) -> TextDemoSettings:
        return dataclasses.replace(self, **changes)

    @property
    def recorded(self) -> dict[str, str]:
        """The modules recorded, each with its reduction: the first and the top encoder block, each by its first token
        ([CLS]) and by the mean over its real tokens. A module is hooked once, so the mean is read from the block's
        last submodule (`.output`, BertOutput), which returns exactly the block's output (tests/textdemo checks
        it)."""
        top = self.num_layers - 1
        return {"bert.encoder.layer.0": "first", "bert.encoder.layer.0.output": "mean",
                f"bert.encoder.layer.{top}": "first", f"bert.encoder.layer.{top}.output": "mean"}
