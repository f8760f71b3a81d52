"""TrainConfig: loading, coercion and validation, with errors that name the key."""

from __future__ import annotations

import pytest

from convcoach.config import TrainConfig, coerce, from_dict, load_config, load_yaml, parse_mapping, save_yaml
from convcoach.errors import ConfigError


def test_defaults_validate():
    config = TrainConfig()
    assert config.validate() is config


def test_from_dict_coerces_strings_to_the_field_types():
    config = from_dict({"batch_size": "64", "lr": "0.05", "quiet": "yes", "depth": "14", "data_dir": None})
    assert (config.batch_size, config.lr, config.quiet, config.depth, config.data_dir) == (64, 0.05, True, 14, None)


def test_dashed_keys_map_to_fields():
    assert from_dict({"batch-size": 32, "label-smoothing": 0}).batch_size == 32


@pytest.mark.parametrize(
    ("key", "suggestion"), [("epoch", "epochs"), ("optimiser", "optimizer"), ("weight_decy", "weight_decay")]
)
def test_unknown_key_is_named_with_the_nearest_valid_key(key, suggestion):
    with pytest.raises(ConfigError, match=rf"unknown key '{key}' in config \(did you mean '{suggestion}'\?\)"):
        from_dict({key: 1})


def test_misspelled_learning_rate_is_named():
    with pytest.raises(ConfigError, match=r"unknown key 'lerning_rate' in run\.yaml"):
        from_dict({"lerning_rate": 0.1}, source="run.yaml")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("batch_size", "abc", r"batch_size: 'abc' is not a valid int"),
        ("epochs", 2.5, r"epochs: '2.5' is not a valid int"),
        ("quiet", "maybe", r"quiet: 'maybe' is not a valid bool"),
        ("batch_size", None, r"batch_size may not be empty"),
    ],
)
def test_coerce_errors_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({key: value})


def test_lr_takes_a_number_or_auto():
    assert from_dict({"lr": "0.05"}).lr == 0.05
    assert from_dict({"lr": "Auto"}).validate().lr == "auto"


def test_integral_float_is_accepted_for_an_int():
    assert from_dict({"epochs": 3.0}).epochs == 3


@pytest.mark.parametrize("value", ["hflip,translate:2", ["hflip", "translate:2"], " hflip , translate:2 ,"])
def test_augment_list_from_cli_string_or_yaml_list(value):
    assert from_dict({"augment": value}).augment == ["hflip", "translate:2"]


def test_augment_list_annotation_coerces_to_a_list():
    assert coerce("augment", ("hflip",), list[str]) == ["hflip"]


def test_model_options_string_parses_yaml_values():
    config = from_dict({"model_options": "stem=none"})
    assert config.model_options == {"stem": "none"}
    assert config.validate().model_options == {"stem": "none"}


def test_model_options_mapping_passes_through():
    config = from_dict({"model_options": {"shortcut": "identity", "stochastic_depth": 0.1}})
    assert config.model_options == {"shortcut": "identity", "stochastic_depth": 0.1}
    config.validate()


def test_parse_mapping_types_each_value():
    assert parse_mapping("model_options", "a=1, b=0.5,c=true,d=x,") == {"a": 1, "b": 0.5, "c": True, "d": "x"}


def test_parse_mapping_without_equals_is_an_error():
    with pytest.raises(ConfigError, match=r"model_options: 'stem' is not of the form name=value"):
        parse_mapping("model_options", "stem")


def test_unknown_model_option_is_an_error_with_a_suggestion():
    config = from_dict({"model_options": "stm=none"})
    with pytest.raises(ConfigError, match=r"model 'resnet' has no option 'stm' \(did you mean 'stem'\?\)"):
        config.validate()


def test_model_option_valid_for_resnet_is_unknown_for_cnn():
    with pytest.raises(ConfigError, match=r"model 'cnn' has no option 'stem'"):
        from_dict({"model": "cnn", "model_options": "stem=none"}).validate()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("dropout", 1.5, r"dropout must be in \[0.0, 0.99\], got 1.5"),
        ("val_fraction", -0.1, r"val_fraction must be in"),
        ("momentum", 1.0, r"momentum must be in"),
        ("batch_size", 0, r"batch_size must be >= 1, got 0"),
        ("depth", 0, r"depth must be >= 1, got 0"),
        ("lr", 0.0, r"lr must be a number > 0 \(e.g. 0.1\) or auto, got 0.0"),
        ("lr", "fast", r"lr must be a number > 0 \(e.g. 0.1\) or auto, got fast"),
        ("precision", "fp8", r"precision must be one of auto, fp32, bf16, fp16; got 'fp8'"),
        ("momentum_convention", "nag", r"momentum_convention must be one of sum, ema"),
        ("device", "tpu", r"device must be auto, cpu or cuda"),
    ],
)
def test_validate_rejects_out_of_range_values(key, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{key: value}).validate()


def test_validate_rejects_unknown_optimizer_listing_names():
    with pytest.raises(
        ConfigError,
        match=r"unknown optimizer 'adamm'.*known: adagrad, adam, adamw, momentum, muon, nesterov, rmsprop, sgd",
    ):
        TrainConfig(optimizer="adamm").validate()


def test_validate_rejects_unknown_augment_op():
    with pytest.raises(ConfigError, match=r"unknown augment\w* 'twirl'"):
        TrainConfig(augment=["hflip", "twirl"]).validate()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("model", "resnet51", r"unknown model 'resnet51'"),
        ("activation", "relu6", r"unknown activation 'relu6'"),
        ("norm", "group:x", r"group count must be a positive integer"),
        ("init", "glorot", r"unknown init 'glorot'"),
        ("loss", "mse", r"unknown loss 'mse'"),
        ("schedule", "step", r"give the epochs"),
        ("reg", "l3:1", r"reg 'l3:1'"),
        ("data", "imagenet-21k", r"imagenet-21k"),
    ],
)
def test_validate_checks_names_against_the_registries(key, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{key: value}).validate()


def test_load_yaml_of_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: [1, 2\nlr: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_yaml(path)


def test_load_yaml_of_a_list_is_an_error(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- epochs\n- 3\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping"):
        load_yaml(path)


def test_load_yaml_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "nope.yaml")


def test_empty_yaml_is_an_empty_mapping(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_yaml(path) == {}


def test_load_config_merges_file_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nbatch_size: 64\naugment: [hflip]\nmodel_options: {stem: none}\n")
    config = load_config(path, batch_size=32)
    assert (config.epochs, config.batch_size, config.augment, config.model_options) == (
        3,
        32,
        ["hflip"],
        {"stem": "none"},
    )


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epoch: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'epoch' in .*run\.yaml \(did you mean 'epochs'\?\)"):
        load_config(path)


def test_save_then_load_round_trips(tmp_path):
    config = from_dict({"epochs": 2, "augment": ["hflip"], "model_options": {"stem": "none"}, "lr": 0.2})
    save_yaml(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
