"""Settings of a run: one frozen dataclass, validated once where it is built, written into the run's manifest."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

DATASETS = ("mnist", "fashion-mnist", "digits")
LOOPS = ("built-in", "own")  # layerlapse's training of the reference network, or the user's own loop or framework
DEVICES = ("auto", "cpu", "cuda")
# report.html's size budget by default, in MB: all 60,000 MNIST training images over 50 snapshots, every thumbnail
# included, fit (bench/report_speed.py); past it the page shows a stated, stratified subsample
REPORT_BUDGET_MB = 60.0
MAP_METHODS = ("aligned", "independent", "aligned-umap", "pca")  # see layerlapse.maps.project
MAP_BACKENDS = ("auto", "umap-learn", "torchdr")  # what runs the aligned method's heavy parts: layerlapse.maps.backend
# input size of the reference network per dataset, known without loading the data
IMAGE_SIZES = {"mnist": (28, 28), "fashion-mnist": (28, 28), "digits": (8, 8)}


@dataclass(frozen=True)
class RunConfig:
    """What to train, what to record and how to map it.

    Checked where it is built: a setting out of range raises `ConfigError` (a `LayerlapseError`) with a one-line
    message. Stored in the run's manifest (`to_dict`) and read back with it (`from_dict`).

    Parameters
    ----------
    dataset : str, default "mnist"
        "mnist", "fashion-mnist" or "digits" (scikit-learn's bundled 8×8 digits, offline) for the built-in loop;
        any short name of the user's data when `loop` is "own".
    epochs : int or None, default 15
        Training epochs; None only for an own loop that did not say.
    layers : tuple of str, default ("hidden",)
        The layers whose activations are recorded and mapped, by module name (`layerlapse layers` lists them); a
        single name is taken as one layer.
    probe : int or None, default 10000
        The number of training images whose activations are recorded every epoch (a stratified, seeded subset);
        None records every training image, as the article does.
    test_probe : int or None, default 1000
        Test images recorded every epoch and placed on every frame; 0 for none, None for every test image.
    seed : int, default 0
        Seeds the training (split, shuffles, dropout) and the maps.
    data_seed : int, default 0
        Seeds which images are recorded and trained on: the probe, the test probe and `train_subset`. Kept apart
        from `seed` so that runs of several seeds record the same probe and compare item by item
        (`layerlapse compare`). A run recorded before it existed used its `seed` here.
    batch_size : int or None, default 100
        Training batch size.
    learning_rate : float or None, default 1e-3
        Adam's learning rate.
    validation_split : float or None, default 0.2
        The share of the training set held out for validation, between 0 and 1.
    n_neighbors : int, default 40
        UMAP's number of neighbours (at least 2, and fewer than the probe's images).
    map_method : str, default "aligned"
        How each epoch is mapped: "aligned", "independent", "aligned-umap" or "pca" (see `layerlapse.maps.project`).
    map_backend : str, default "auto"
        What runs the aligned method: "auto", "umap-learn" or "torchdr" (see `layerlapse.maps.backend`).
    device : str, default "auto"
        Where the built-in loop trains: "auto" (CUDA when torch sees a GPU), "cpu" or "cuda".
    train_subset : int or None, default None
        Train on a stratified, seeded subset of this many training images (quick looks, tests) instead of all.
    loop : str, default "built-in"
        "built-in": layerlapse trains the reference network. "own": a run recorded from the user's own loop or
        framework (`Recorder`, the callbacks), whose `dataset` is any name the user gives and whose training
        settings (epochs, batch_size, learning_rate, validation_split) are what the user stated, or None.

    Examples
    --------
    >>> from layerlapse import RunConfig
    >>> config = RunConfig(dataset="digits", epochs=5, probe=500, layers=("hidden", "flat1"))
    >>> config.layers
    ('hidden', 'flat1')
    >>> RunConfig.from_dict(config.to_dict()) == config
    True
    """

    dataset: str = "mnist"
    epochs: int | None = 15
    layers: tuple[str, ...] = ("hidden",)
    probe: int | None = 10_000
    test_probe: int | None = 1_000
    seed: int = 0
    data_seed: int = 0
    batch_size: int | None = 100
    learning_rate: float | None = 1e-3
    validation_split: float | None = 0.2
    n_neighbors: int = 40
    map_method: str = "aligned"
    map_backend: str = "auto"
    device: str = "auto"
    train_subset: int | None = None
    loop: str = "built-in"

    def __post_init__(self) -> None:
        layers = (self.layers,) if isinstance(self.layers, str) else self.layers
        if not isinstance(layers, (tuple, list)):
            raise ConfigError(f"layers must be a list of layer names, got {self.layers!r}: see `layerlapse layers`")
        object.__setattr__(self, "layers", tuple(layers))
        _check_choice("loop", self.loop, LOOPS)
        if self.loop == "built-in":
            _check_choice("dataset", self.dataset, DATASETS,
                          " (a run recorded from your own loop names its data freely: Recorder(..., dataset=...))")
        elif not isinstance(self.dataset, str) or not self.dataset.strip() or len(self.dataset) > 200:
            raise ConfigError(f"dataset must be a short name for your data, got {self.dataset!r}")
        _check_choice("device", self.device, DEVICES)
        _check_choice("map method", self.map_method, MAP_METHODS)
        _check_choice("map backend", self.map_backend, MAP_BACKENDS)
        check_backend_fits_method(self.map_backend, self.map_method)
        own = self.loop == "own"  # the user's loop may leave its training settings unstated (None)
        if not (own and self.epochs is None):
            _check_int("epochs", self.epochs, low=1)
        if not (own and self.batch_size is None):
            _check_int("batch_size", self.batch_size, low=1)
        _check_int("n_neighbors", self.n_neighbors, low=2)
        _check_int("seed", self.seed, low=0)
        _check_int("data_seed", self.data_seed, low=0)
        if self.train_subset is not None:
            _check_int("train_subset", self.train_subset, low=10)
        if self.probe is not None:
            _check_int("probe", self.probe, low=self.n_neighbors + 1, hint="or 'all' for every training image")
        if self.test_probe is not None:
            _check_int("test_probe", self.test_probe, low=0, hint="or 'all' for every test image")
        if len(set(self.layers)) != len(self.layers):
            raise ConfigError(f"layers must not repeat a name, got {list(self.layers)}")
        if own and self.validation_split is None:
            pass
        elif not isinstance(self.validation_split, (int, float)) or not 0.0 < self.validation_split < 1.0:
            raise ConfigError(f"validation_split must be between 0 and 1 (exclusive), got {self.validation_split}")
        if own and self.learning_rate is None:
            pass
        elif not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if not self.layers or any(not isinstance(name, str) or not name for name in self.layers):
            raise ConfigError(f"layers must be one or more layer names, got {list(self.layers)}: "
                              "see `layerlapse layers`")

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values (`layers` a list), as the run's manifest stores them."""
        return {**dataclasses.asdict(self), "layers": list(self.layers)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """The settings from `to_dict`'s form, checked again.

        Parameters
        ----------
        values : dict
            Setting name to value; a name this version does not know raises `ConfigError`, one left out takes its
            default.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown settings {unknown}: this layerlapse knows {sorted(known)}")
        if "data_seed" not in values:  # a run recorded before data_seed chose its data with its seed
            values = {**values, "data_seed": values.get("seed", 0)}
        return cls(**values)


def check_backend_fits_method(backend: str, method: str) -> None:
    """A backend runs the aligned method only: the other methods are one library's own fit (umap-learn's UMAP and
    AlignedUMAP, scikit-learn's PCA), so naming another backend for them would be silently ignored."""
    if backend not in ("auto", "umap-learn") and method != "aligned":
        raise ConfigError(f"--map-backend {backend} runs the aligned map only, got --map {method}: use --map aligned "
                          "or leave --map-backend at auto")


def parse_probe(text: str, option: str = "--probe") -> int | None:
    """The CLI's `--probe` and `--test-probe`: a count, or 'all' for every image."""
    if text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{option} must be a number of images or 'all', got {text!r}") from None


def _check_choice(name: str, value: str, allowed: tuple[str, ...], more: str = "") -> None:
    if value in allowed:
        return
    close = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"unknown {name} {value!r}: choose one of {', '.join(allowed)}{hint}{more}")


def _check_int(name: str, value: int, *, low: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        extra = f", {hint}" if hint else ""
        raise ConfigError(f"{name} must be a whole number of at least {low}{extra}; got {value!r}")
