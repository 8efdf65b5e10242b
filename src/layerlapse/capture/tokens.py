"""Tokens as points: a sequence layer recorded as one point per real token of the probe's items (`reduce="tokens"`),
so a user can watch how token representations organise while a transformer is fine-tuned.

Each point knows its item, its position in the item's sequence and its token's text; padding (by the probe's
`attention_mask`) is left out. Such a run's points are tokens from end to end: every recorded layer is taken per
token, each token carries its item's label and its item's prediction, and its text is the token in its sentence
("‹brown›  ·  the quick ‹brown› fox"), which the report shows on hover. A run of tokens is a run of its own beside the
run of items (a second Recorder or callback on the same model); the number of points is bounded (MAX_TOKEN_POINTS),
since every point is mapped at every snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .probe import ProbeInputs
from .session import Inputs

MAX_TOKEN_POINTS = 20_000  # tokens mapped at every snapshot: as many points as a large probe of items
CONTEXT_TOKENS = 12  # tokens shown on each side of a token in its sentence
TOKENS = "tokens"


@dataclass(frozen=True)
class TokenPoints:
    """The probe's real tokens, item by item: the points of a run recorded with reduce="tokens"."""

    items: np.ndarray  # (points,) the probe item each token belongs to
    positions: np.ndarray  # (points,) its position in the item's sequence
    tokens: list[str]  # (points,) its text, as the tokenizer writes it

    def __len__(self) -> int:
        return len(self.items)

    def texts(self) -> list[str]:
        """Each token in its sentence: the token, then up to CONTEXT_TOKENS tokens each side with it marked."""
        starts = np.searchsorted(self.items, np.arange(int(self.items.max()) + 1 if len(self) else 0))
        ends = np.append(starts[1:], len(self))
        shown = []
        for point, (item, token) in enumerate(zip(self.items, self.tokens)):
            first, last = starts[item], ends[item]
            low, high = max(first, point - CONTEXT_TOKENS), min(last, point + CONTEXT_TOKENS + 1)
            words = [f"‹{word}›" if at == point else word for at, word in zip(range(low, high), self.tokens[low:high])]
            shown.append(f"‹{token}›  ·  {'… ' if low > first else ''}{' '.join(words)}{' …' if high < last else ''}")
        return shown

    def table(self) -> dict[str, list]:
        """What the run folder keeps of them (probe/tokens.json)."""
        return {"item": self.items.tolist(), "position": self.positions.tolist(), "token": list(self.tokens)}


def tokens_as_inputs(tokens: TokenPoints, labels: np.ndarray, class_names: list[str]) -> Inputs:
    """What a run of tokens stores of its points: each token's item's label, the token in its sentence as its
    text, and the table of items, positions and tokens."""
    return Inputs(np.asarray(labels)[tokens.items], class_names, texts=tokens.texts(), tokens=tokens.table())


def token_layers(reductions: Mapping[str, str]) -> list[str]:
    """The layers recorded per token; a run records all of its layers per token, or none (a point is one thing)."""
    per_token = [layer for layer, how in reductions.items() if how == TOKENS]
    if per_token and len(per_token) != len(reductions):
        others = [layer for layer in reductions if layer not in per_token]
        raise ConfigError(f"reduce='tokens' makes a run's points tokens, but layers {others} are recorded per item: "
                          "record the token layers in a run of their own (a second Recorder or callback)")
    return per_token


def token_points(probe: ProbeInputs, tokenizer: Any, *, test_inputs: Sequence[str] = ()) -> TokenPoints:
    """The probe's real tokens as points, checked: a dict probe with "input_ids" (and "attention_mask"), a tokenizer
    to name its tokens, no more than MAX_TOKEN_POINTS of them, and no test inputs (their points are items)."""
    if test_inputs:
        raise ConfigError(f"reduce='tokens' records the probe's tokens, not the {' and '.join(test_inputs)}: record "
                          "those in the run of items (without reduce='tokens')")
    if probe.kind != "kwargs" or "input_ids" not in probe.data:
        raise ConfigError("reduce='tokens' takes a tokenised probe, a dict with \"input_ids\" (and "
                          "\"attention_mask\"): give the tokenizer's output for the items to show as tokens")
    ids = probe.data["input_ids"]
    real = real_tokens(probe.data)
    if ids.dim() != 2:
        raise ConfigError(f"the probe's input_ids have shape {tuple(ids.shape)}: give (items, tokens)")
    count = int(real.sum())
    if count > MAX_TOKEN_POINTS:
        raise ConfigError(f"the probe holds {count:,} real tokens but a run of tokens maps at most "
                          f"{MAX_TOKEN_POINTS:,}: give it fewer or shorter items (e.g. the first "
                          f"{max(1, len(ids) * MAX_TOKEN_POINTS // count):,})")
    items, positions = (index.numpy() for index in torch.nonzero(real, as_tuple=True))
    return TokenPoints(items.astype(np.int64), positions.astype(np.int64),
                       token_names(ids[real].tolist(), tokenizer))


def token_items(inputs: ProbeInputs) -> np.ndarray:
    """The item of each of the inputs' real tokens, in the order a run of tokens keeps its points."""
    if inputs.kind != "kwargs" or "input_ids" not in inputs.data:
        raise ConfigError(f"a Recorder of tokens (reduce='tokens') takes tokenised inputs, a dict with "
                          f"\"input_ids\", but the {inputs.what} is a {inputs.kind}")
    return torch.nonzero(real_tokens(inputs.data), as_tuple=True)[0].numpy().astype(np.int64)


def real_tokens(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(items, tokens) bool: which of a tokenised batch's tokens are real (all, without an attention mask)."""
    ids, mask = batch["input_ids"], batch.get("attention_mask")
    if mask is None:
        return torch.ones(ids.shape[:2], dtype=torch.bool, device=ids.device)
    if mask.shape != ids.shape:
        raise ConfigError(f"the probe's attention_mask has shape {tuple(mask.shape)} but its input_ids "
                          f"{tuple(ids.shape)}: give one mask entry per token")
    return mask != 0


def token_names(ids: list[int], tokenizer: Any) -> list[str]:
    """Token ids as their text: by a Hugging Face tokenizer (`convert_ids_to_tokens`), or a list of token strings by
    id."""
    if tokenizer is None:
        raise ConfigError("reduce='tokens' needs the tokens' text: pass tokenizer=... (a Hugging Face tokenizer, or "
                          "a list of token strings by id)")
    if hasattr(tokenizer, "convert_ids_to_tokens"):
        return [str(token) for token in tokenizer.convert_ids_to_tokens(ids)]
    if isinstance(tokenizer, (str, bytes)) or not isinstance(tokenizer, Sequence):
        raise ConfigError(f"tokenizer is {type(tokenizer).__name__}: give a Hugging Face tokenizer, or a list of "
                          "token strings by id")
    unknown = next((token_id for token_id in ids if not 0 <= token_id < len(tokenizer)), None)
    if unknown is not None:
        raise ConfigError(f"the probe holds token id {unknown} but the tokenizer's list names {len(tokenizer):,} "
                          "tokens: give the vocabulary the probe was tokenised with")
    return [str(tokenizer[token_id]) for token_id in ids]


def rows_per_token(output: torch.Tensor, real: torch.Tensor | None, name: str) -> torch.Tensor:
    """A batch of a sequence layer's outputs (N, tokens, features) as one row per real token, item by item."""
    if output.dim() != 3 or real is None or real.shape != output.shape[:2]:
        shape = tuple(output.shape[1:])
        raise ConfigError(f"reduce='tokens' takes one row per token of a (tokens, features) output, but layer "
                          f"{name!r} outputs {shape} per input{'' if real is None else f' for {real.shape[1]} tokens'}"
                          ": record a layer whose output is the token sequence")
    return output[real.to(output.device)]
