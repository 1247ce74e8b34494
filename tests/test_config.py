"""Reading the original's config files and reporting bad ones by field name."""

import dataclasses

import pytest
import yaml
from helpers import ROOT, config_path

from modules.convert.config import (
    CommonParams,
    ConfigError,
    DenseMotionParams,
    GeneratorParams,
    KPDetectorParams,
    load_config,
)

CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


def test_the_eight_original_configs_are_there():
    assert [p.name for p in CONFIGS] == [
        "bair-256.yaml",
        "fashion-256.yaml",
        "mgif-256.yaml",
        "nemo-256.yaml",
        "taichi-256.yaml",
        "taichi-adv-256.yaml",
        "vox-256.yaml",
        "vox-adv-256.yaml",
    ]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_original_configs_load(path):
    config = load_config(path)
    assert config.frame_shape == (256, 256)
    assert config.num_kp == 10 and config.estimate_jacobian
    assert config.dense_motion.kp_variance == 0.01  # the original's default
    assert config.kp_detector.single_jacobian_map == (path.name == "mgif-256.yaml")


def write_config(tmp_path, edit):
    raw = yaml.safe_load(config_path("tiny-vox").read_text())
    edit(raw)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def delete(section, field):
    def edit(raw):
        node = raw["model_params"]
        for key in section.split(".")[1:]:
            node = node[key]
        del node[field]

    return edit


def set_value(section, field, value):
    def edit(raw):
        node = raw["model_params"]
        for key in section.split(".")[1:]:
            node = node[key]
        node[field] = value

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            delete("model_params.common_params", "num_kp"),
            "missing field model_params.common_params.num_kp",
        ),
        (
            delete("model_params.kp_detector_params", "temperature"),
            "missing field model_params.kp_detector_params.temperature",
        ),
        (
            delete("model_params.generator_params.dense_motion_params", "num_blocks"),
            "missing field model_params.generator_params.dense_motion_params.num_blocks",
        ),
        (
            set_value("model_params.common_params", "num_kp", "ten"),
            "model_params.common_params.num_kp must be a positive integer, got 'ten'",
        ),
        (
            set_value("model_params.kp_detector_params", "scale_factor", 2),
            "model_params.kp_detector_params.scale_factor must be a number in (0, 1], got 2",
        ),
        (
            set_value("model_params.generator_params", "estimate_occlusion_map", "yes"),
            "model_params.generator_params.estimate_occlusion_map must be true or false, got 'yes'",
        ),
        (
            set_value("model_params.generator_params", "num_down_block", 2),
            "unknown field model_params.generator_params.num_down_block",
        ),
        (lambda raw: raw.pop("model_params"), "missing section model_params"),
        (
            lambda raw: raw["dataset_params"].update(frame_shape=[256]),
            "dataset_params.frame_shape must be [height, width, 3]",
        ),
    ],
)
def test_bad_fields_are_named(tmp_path, edit, message):
    path = write_config(tmp_path, edit)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_params: [unclosed\n")
    with pytest.raises(ConfigError, match="not a readable YAML file"):
        load_config(bad)


def test_dense_motion_params_may_be_absent(tmp_path):
    config = load_config(
        write_config(tmp_path, delete("model_params.generator_params", "dense_motion_params"))
    )
    assert config.dense_motion is None and not config.estimate_occlusion_map


def test_config_is_typed_and_frozen():
    config = load_config(config_path("tiny-vox"))
    assert isinstance(config.common, CommonParams)
    assert isinstance(config.kp_detector, KPDetectorParams)
    assert isinstance(config.generator, GeneratorParams)
    assert isinstance(config.dense_motion, DenseMotionParams)
    assert config.generator.dense_motion_params is config.dense_motion
    for section in (config, config.common, config.kp_detector, config.generator):
        with pytest.raises(dataclasses.FrozenInstanceError):
            section.path = "changed"
    assert config.kp_detector.pad == 0 and config.kp_detector.scale_factor == 0.25
