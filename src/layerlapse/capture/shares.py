"""The captures of a fit that runs in several processes (DDP): each rank runs its contiguous share of the probe, the
test probe and the test set through its copy of the model, and rank 0 gathers the shares in probe order; rank 0's
`RecordingSession` is the only one that writes. Framework-free beyond torch.distributed, so that any framework's
callback can use it (Lightning's does).

`RankShares` is the session's `Capture` across the ranks: rank 0 `lead`s each recording event (its session asks for
captures, each announced to the others), the other ranks `follow`. `agree_at_start` has every rank learn whether any
failed to set up, and that all were given the same probe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, Subset

from ..errors import ConfigError, LayerlapseError
from . import collectives
from .probe import ProbeInputs
from .recorder import Recorder
from .session import Captured

INPUT_SETS = ("probe", "test_probe", "test_set")
Result = TypeVar("Result")


def agree_at_start(failure: BaseException | None, fingerprint: dict[str, str], rank: int, world: int) -> None:
    """Every rank learns of any rank's failure to set up (so none waits for a rank that has stopped) and checks that
    all were given the same probe; one process raises its own failure, if any."""
    if world > 1:
        reports = collectives.all_gather(_report(failure, fingerprint))
        _raise_first_failure(reports, rank, failure)
        check_same_probe(reports)
    elif failure is not None:
        raise failure


class RankShares:
    """The session's Capture across the processes of a fit: each rank runs its contiguous share of the inputs,
    rank 0 gathers them in order. Rank 0 `lead`s an event (its session asks for captures, each announced to the
    others); the other ranks `follow`: they capture their share whenever asked, until rank 0 says it is done
    (or failed, when they fail too). One process is the plain Recorder."""

    def __init__(self, recorder: Recorder, rank: int, world: int) -> None:
        self.recorder = recorder
        self.rank, self.world = rank, world
        self.layers = recorder.layers
        self._dtypes: dict[str, str] = {}
        self._shares: dict[str, ProbeInputs | None] = {}  # made once: a loader's share is counted when made

    def __repr__(self) -> str:
        return f"RankShares(rank={self.rank} of {self.world}, layers={self.layers})"

    def capture(self, which: str) -> Captured:
        """The activations of `which`, whole (rank 0)."""
        if self.world == 1:
            return self.recorder.capture(which)
        collectives.broadcast(("capture", which))
        share, error = self._own_share(which)
        shares = collectives.gather(share)
        if error is not None:
            raise error
        captured = _assemble(shares, which)
        self._dtypes = {layer: str(values.dtype) for layer, values in captured.activations.items()}
        return captured

    def layer_info(self) -> dict[str, dict[str, Any]]:
        info = self.recorder.layer_info()
        for layer, dtype in self._dtypes.items():  # the dtype of the whole, not of rank 0's share
            if layer in info:
                info[layer]["dtype"] = dtype
        return info

    def lead(self, event: Callable[[], Result]) -> Result:
        if self.world == 1:
            return event()
        try:
            result = event()
        except BaseException as error:
            collectives.broadcast(("failed", f"{type(error).__name__}: {error}"))
            raise
        collectives.broadcast(("done", None))
        return result

    def follow(self) -> None:
        own_error: BaseException | None = None
        while True:
            command, argument = collectives.broadcast(None)
            if command == "done":
                return
            if command == "failed":
                if own_error is not None:
                    raise own_error
                raise LayerlapseError(f"rank 0 stopped recording ({argument}): see rank 0's error")
            share, error = self._own_share(argument)
            own_error = own_error or error
            collectives.gather(share)  # an error too, so that rank 0 stops instead of waiting for this rank

    def fingerprint(self) -> dict[str, str]:
        """A checksum of each input set this rank was given (probe, labels, test probe, test set)."""
        prints = {which: _fingerprint(inputs) for which, inputs in self._inputs().items()}
        if self.recorder.labels is not None:
            prints["probe labels"] = hashlib.sha256(np.ascontiguousarray(self.recorder.labels).tobytes()).hexdigest()
        return prints

    def _own_share(self, which: str) -> tuple[Captured | tuple[str, str] | None, BaseException | None]:
        """This rank's rows of `which` through the model (None when it has none), or its error and the report of
        it; never raised here, since every rank must reach the gather that follows."""
        try:
            if which not in self._shares:
                inputs = self._inputs().get(which)
                if inputs is None:
                    raise ValueError(f"this rank was given no {which.replace('_', ' ')}")
                self._shares[which] = rank_share(inputs, self.rank, self.world)
            share = self._shares[which]
            if share is None:
                return None, None
            activations, probabilities, _ = self.recorder.run_probe(share)
            return Captured(activations, probabilities), None
        except BaseException as error:
            return _report(error, None), error

    def _inputs(self) -> dict[str, ProbeInputs]:
        return {which: inputs for which in INPUT_SETS if (inputs := self.recorder.inputs(which)) is not None}


# ---- the shares of the ranks -----------------------------------------------------------------------------------------
def share_rows(n: int, rank: int, world: int) -> range:
    """The contiguous rows of `n` inputs that rank `rank` of `world` runs (the first ranks take one more)."""
    size, extra = divmod(n, world)
    start = rank * size + min(rank, extra)
    return range(start, start + size + (rank < extra))


def rank_share(inputs: ProbeInputs, rank: int, world: int) -> ProbeInputs | None:
    """This rank's rows of a probe, in the same form; None when it has none (fewer inputs than ranks)."""
    rows = share_rows(len(inputs), rank, world)
    if not rows:
        return None
    part = slice(rows.start, rows.stop)
    if inputs.kind == "tensor":
        data: Any = inputs.data[part]
    elif inputs.kind == "args":
        data = [tensor[part] for tensor in inputs.data]
    elif inputs.kind == "kwargs":
        data = {key: tensor[part] for key, tensor in inputs.data.items()}
    else:
        data = _loader_share(inputs.data, rows, inputs.what)
    return ProbeInputs(data, what=inputs.what, batch_size=inputs.batch_size)


def _loader_share(loader: DataLoader, rows: range, what: str) -> DataLoader:
    """The loader's inputs `rows` (counted in the order it yields them) as a loader of its own."""
    if isinstance(loader.dataset, IterableDataset):
        raise ConfigError(f"the {what} is an IterableDataset, which cannot be split between the ranks of a "
                          "distributed fit: give it as tensors or a map-style Dataset")
    if loader.batch_sampler is not None:
        order = [index for batch in loader.batch_sampler for index in batch]
    else:
        order = list(loader.sampler)
    return DataLoader(Subset(loader.dataset, order[rows.start:rows.stop]),
                      batch_size=loader.batch_size if loader.batch_sampler is not None else None,
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers, pin_memory=loader.pin_memory)


def _assemble(shares: list[Any], which: str) -> Captured:
    """The ranks' shares, in rank order, as one Captured; a rank's error raised here, on rank 0."""
    for rank, share in enumerate(shares):
        if isinstance(share, tuple):
            raise LayerlapseError(f"rank {rank} could not run its share of the {which.replace('_', ' ')} "
                                  f"({share[1]})")
    parts = [share for share in shares if share is not None]
    activations = {layer: np.concatenate([part.activations[layer] for part in parts])
                   for layer in parts[0].activations}
    whole = all(part.probabilities is not None for part in parts)
    probabilities = np.concatenate([part.probabilities for part in parts]) if whole else None
    return Captured(activations, probabilities)


def check_same_probe(fingerprints: list[dict[str, str]]) -> None:
    """Refuse a fit whose ranks were given different probes (their checksums, one dict per rank)."""
    first = fingerprints[0]
    for rank, prints in enumerate(fingerprints[1:], start=1):
        differs = sorted(which for which in {*first, *prints} if first.get(which) != prints.get(which))
        if differs:
            raise ConfigError(f"the probe differs between ranks (rank {rank}'s {', '.join(differs)} is not rank "
                              "0's): give every rank the same probe, e.g. choose it with a fixed seed, not a "
                              "rank-dependent one")


def _fingerprint(inputs: ProbeInputs) -> str:
    digest = hashlib.sha256(f"{inputs.kind}:{len(inputs)}".encode())
    if inputs.kind == "loader":
        for batch in inputs.data:
            _hash_tensors(digest, batch)
    else:
        _hash_tensors(digest, inputs.data)
    return digest.hexdigest()


def _hash_tensors(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _hash_tensors(digest, value[key])
    elif isinstance(value, (tuple, list)):
        for item in value:
            _hash_tensors(digest, item)
    else:
        digest.update(repr(value).encode())


def _report(error: BaseException | None, value: Any) -> Any:
    """What a rank sends the others: its value, or ("error", message) when it failed."""
    return ("error", f"{type(error).__name__}: {error}") if error is not None else value


def _raise_first_failure(reports: list[Any], rank: int, own: BaseException | None) -> None:
    if own is not None:
        raise own
    for other, report in enumerate(reports):
        if isinstance(report, tuple) and report[0] == "error":
            raise LayerlapseError(f"rank {other} could not start recording ({report[1]}): see rank {other}'s error")
