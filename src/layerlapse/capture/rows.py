"""How a layer's output of more than one dimension per input becomes one row, in words: the reductions there are,
the caption that says which was taken, and the one-line errors for a reduction that does not fit the output. Free of
torch and numpy, so the Keras callback on any backend says it the same way as the Recorder."""

from __future__ import annotations

from ..errors import ConfigError

# how a layer's output of more than one dimension per input becomes a row
REDUCTIONS = ("flatten", "mean", "first", "last", "tokens")  # "tokens": a point per token (capture.tokens)


def describe_reduction(how: str, shape: tuple[int, ...], spatial: bool, *, unit: str = "token",
                       by: str | None = None, bidirectional: bool = False) -> str:
    """The reduction as the caption says it: `spatial`, the output is a feature map, not a sequence; `unit`, what
    the sequence holds ("token", or "step" for a recurrent layer); `by`, what said where each sequence ends
    ("attention mask", "sequence lengths"); `bidirectional`, a recurrent layer whose backward half ends first."""
    if len(shape) <= 1:
        return "as is"
    if how == "flatten":
        return f"flattened from {'×'.join(map(str, shape))}"
    told = f" (by {by})" if by else ""
    if how == "tokens":
        return f"one point per real {unit}, padding left out"
    if how == "mean":
        return "mean over space" if spatial else f"mean over {unit}s{told}"
    if how == "last" and bidirectional:
        return f"last {unit} forward, first backward{told}"
    return f"last {unit}{told}" if how == "last" else f"first {unit}"


def sequence_reduction_refused(how: str, layer: str, shape: tuple[int, ...]) -> ConfigError:
    """The error for reduce='first' or 'last' on an output that is not a sequence of tokens or steps."""
    return ConfigError(f"reduce={how!r} takes the {how} token of (tokens, features) outputs, but layer {layer!r} "
                       f"outputs {shape} per input: use reduce='mean' or 'flatten' for it")


def mask_does_not_fit(layer: str, mask_tokens: int, shape: tuple[int, ...]) -> ConfigError:
    """The error for reduce='last' by an attention mask on a layer whose tokens are not the mask's."""
    return ConfigError(f"reduce='last' finds each input's last token by its attention_mask of {mask_tokens} tokens, "
                       f"but layer {layer!r} outputs {shape} per input: use reduce='mean' or 'first' for it")
