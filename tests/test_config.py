import dataclasses

import pytest

from layerlapse.config import DATASETS, DEVICES, IMAGE_SIZES, RunConfig, parse_probe
from layerlapse.errors import ConfigError, LayerlapseError


def raises_one_line(match: str, **settings: object) -> ConfigError:
    with pytest.raises(ConfigError, match=match) as caught:
        RunConfig(**settings)
    assert "\n" not in str(caught.value)
    return caught.value


def test_defaults_are_the_reference_experiment() -> None:
    config = RunConfig()
    assert (config.dataset, config.epochs, config.layers, config.n_neighbors) == ("mnist", 15, ("hidden",), 40)
    assert (config.batch_size, config.learning_rate, config.validation_split) == (100, 1e-3, 0.2)
    assert set(IMAGE_SIZES) == set(DATASETS)
    assert "auto" in DEVICES


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunConfig().epochs = 3  # type: ignore[misc]


def test_config_errors_are_value_errors_a_user_can_fix() -> None:
    assert issubclass(ConfigError, LayerlapseError) and issubclass(ConfigError, ValueError)


def test_unknown_dataset_names_the_choices_and_the_close_match() -> None:
    error = raises_one_line(r"unknown dataset 'minst'", dataset="minst")
    assert "mnist, fashion-mnist, digits" in str(error)
    assert "did you mean 'mnist'?" in str(error)


def test_unknown_dataset_without_a_close_match_gives_no_suggestion() -> None:
    error = raises_one_line(r"unknown dataset 'cifar10x'", dataset="cifar10x")
    assert "did you mean" not in str(error)


def test_unknown_device_names_the_choices() -> None:
    error = raises_one_line(r"unknown device 'gpu': choose one of auto, cpu, cuda", device="gpu")
    assert "did you mean 'cpu'?" in str(error)


@pytest.mark.parametrize(("name", "value", "low"), [
    ("epochs", 0, 1),
    ("epochs", -3, 1),
    ("epochs", 1.5, 1),
    ("batch_size", 0, 1),
    ("n_neighbors", 1, 2),
    ("seed", -1, 0),
    ("train_subset", 5, 10),
])
def test_whole_number_settings_name_the_setting_the_limit_and_the_value(name: str, value: object, low: int) -> None:
    raises_one_line(rf"^{name} must be a whole number of at least {low}; got {value!r}$", **{name: value})


@pytest.mark.parametrize("name", ["epochs", "batch_size", "seed", "n_neighbors"])
def test_a_bool_is_not_a_whole_number(name: str) -> None:
    raises_one_line(rf"{name} must be a whole number .*got True", **{name: True})


def test_probe_must_exceed_n_neighbors_and_says_all_is_allowed() -> None:
    raises_one_line(r"probe must be a whole number of at least 41, or 'all' .*; got 40", probe=40)
    raises_one_line(r"probe must be a whole number of at least 16, or 'all'.*; got 15", probe=15, n_neighbors=15)
    assert RunConfig(probe=41).probe == 41
    assert RunConfig(probe=16, n_neighbors=15).probe == 16  # the limit follows n_neighbors
    assert RunConfig(probe=None).probe is None


@pytest.mark.parametrize("split", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_validation_split_must_lie_strictly_between_0_and_1(split: float) -> None:
    raises_one_line(r"validation_split must be between 0 and 1 \(exclusive\), got", validation_split=split)


@pytest.mark.parametrize("rate", [0.0, -1e-3, float("nan")])
def test_learning_rate_must_be_positive(rate: float) -> None:
    raises_one_line(r"learning_rate must be positive, got", learning_rate=rate)


@pytest.mark.parametrize("layers", [(), [], ("hidden", ""), ("hidden", 3)])
def test_layers_must_be_names(layers: object) -> None:
    raises_one_line(r"layers must be one or more layer names, got .*`layerlapse layers`", layers=layers)


def test_layers_given_as_a_list_become_a_tuple() -> None:
    config = RunConfig(layers=["hidden", "conv2D_1"])  # type: ignore[arg-type]
    assert config.layers == ("hidden", "conv2D_1")
    hash(config)


def test_a_single_layer_name_given_as_a_string_is_not_split_into_letters() -> None:
    try:
        config = RunConfig(layers="hidden")  # type: ignore[arg-type]
    except ConfigError:
        return
    assert config.layers == ("hidden",)


def test_to_dict_and_from_dict_round_trip() -> None:
    config = RunConfig(dataset="digits", epochs=3, layers=("hidden", "conv2D_2"), probe=None, seed=7,
                       batch_size=32, learning_rate=5e-4, validation_split=0.25, n_neighbors=15, device="cpu",
                       train_subset=200)
    values = config.to_dict()
    assert values["layers"] == ["hidden", "conv2D_2"]  # JSON has no tuples
    assert set(values) == {field.name for field in dataclasses.fields(RunConfig)}
    assert RunConfig.from_dict(values) == config
    import json

    assert RunConfig.from_dict(json.loads(json.dumps(values))) == config


def test_from_dict_rejects_unknown_settings_and_lists_the_known_ones() -> None:
    values = {**RunConfig().to_dict(), "neighbours": 30}
    expected = r"unknown settings \['neighbours'\]: this layerlapse knows \[.*'n_neighbors'"
    with pytest.raises(ConfigError, match=expected):
        RunConfig.from_dict(values)


def test_from_dict_validates_the_values() -> None:
    with pytest.raises(ConfigError, match="epochs must be a whole number"):
        RunConfig.from_dict({**RunConfig().to_dict(), "epochs": 0})


def test_from_dict_fills_missing_settings_with_defaults() -> None:
    assert RunConfig.from_dict({"epochs": 2}) == RunConfig(epochs=2)


@pytest.mark.parametrize(("text", "expected"), [("all", None), ("ALL", None), (" all ", None), ("500", 500),
                                                ("60000", 60000)])
def test_parse_probe(text: str, expected: int | None) -> None:
    assert parse_probe(text) == expected


@pytest.mark.parametrize("text", ["lots", "1e3", "", "5.5"])
def test_parse_probe_rejects_what_is_not_a_count(text: str) -> None:
    with pytest.raises(ConfigError, match=rf"^--probe must be a number of images or 'all', got {text!r}$"):
        parse_probe(text)
