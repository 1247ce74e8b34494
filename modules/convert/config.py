"""Reads the original's config files (``config/*.yaml``) as they are.

Only ``model_params`` and ``dataset_params.frame_shape`` matter for inference; the rest
(train_params, discriminator_params, ...) is read and ignored. Every field the models need is
validated and a missing or invalid one is reported by its full name.
"""

import os

import yaml

from modules.errors import ConfigError


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value):
    return _integer(value) and value > 0


def _non_negative_int(value):
    return _integer(value) and value >= 0


def _positive_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _scale(value):
    return _positive_number(value) and value <= 1


def _bool(value):
    return isinstance(value, bool)


# field: (check, what it must be, default or REQUIRED), per section, as the original's
# constructors take them.
REQUIRED = object()
COMMON = {
    "num_kp": (_positive_int, "a positive integer", REQUIRED),
    "num_channels": (_positive_int, "a positive integer", REQUIRED),
    "estimate_jacobian": (_bool, "true or false", False),
}
KP_DETECTOR = {
    "block_expansion": (_positive_int, "a positive integer", REQUIRED),
    "max_features": (_positive_int, "a positive integer", REQUIRED),
    "num_blocks": (_positive_int, "a positive integer", REQUIRED),
    "temperature": (_positive_number, "a positive number", REQUIRED),
    "scale_factor": (_scale, "a number in (0, 1]", 1),
    "single_jacobian_map": (_bool, "true or false", False),
    "pad": (_non_negative_int, "a non-negative integer", 0),
}
GENERATOR = {
    "block_expansion": (_positive_int, "a positive integer", REQUIRED),
    "max_features": (_positive_int, "a positive integer", REQUIRED),
    "num_down_blocks": (_non_negative_int, "a non-negative integer", REQUIRED),
    "num_bottleneck_blocks": (_non_negative_int, "a non-negative integer", REQUIRED),
    "estimate_occlusion_map": (_bool, "true or false", False),
}
DENSE_MOTION = {
    "block_expansion": (_positive_int, "a positive integer", REQUIRED),
    "max_features": (_positive_int, "a positive integer", REQUIRED),
    "num_blocks": (_positive_int, "a positive integer", REQUIRED),
    "scale_factor": (_scale, "a number in (0, 1]", 1),
    "kp_variance": (_positive_number, "a positive number", 0.01),
}


class ModelConfig:
    """The validated model parameters of one config file.

    ``common``, ``kp_detector``, ``generator`` and ``dense_motion`` (None when the generator
    has no dense motion network) are dicts of constructor arguments with defaults filled in;
    ``frame_shape`` is (height, width).
    """

    def __init__(self, path, common, kp_detector, generator, dense_motion, frame_shape):
        self.path = path
        self.common = common
        self.kp_detector = kp_detector
        self.generator = generator
        self.dense_motion = dense_motion
        self.frame_shape = frame_shape

    @property
    def num_kp(self):
        return self.common["num_kp"]

    @property
    def estimate_jacobian(self):
        return self.common["estimate_jacobian"]

    @property
    def estimate_occlusion_map(self):
        return self.dense_motion is not None and self.generator["estimate_occlusion_map"]

    def kp_detector_kwargs(self):
        return {**self.kp_detector, **self.common}

    def generator_kwargs(self):
        return {**self.generator, "dense_motion_params": self.dense_motion, **self.common}


def read_yaml(path):
    """A config file's YAML as it is; ConfigError when it is missing or not YAML."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path} (the original's configs are in config/)")
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"config {path} is not a readable YAML file: {detail}") from None


def load_config(path):
    """Reads and validates a config file; raises ConfigError naming the file and field."""
    path = os.fspath(path)
    raw = read_yaml(path)

    def section(parent, key, prefix):
        value = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(value, dict):
            raise ConfigError(f"config {path}: missing section {prefix}{key}")
        return value

    model = section(raw, "model_params", "")
    common = _fields(
        path, section(model, "common_params", "model_params."), COMMON, "model_params.common_params"
    )
    kp_detector = _fields(
        path,
        section(model, "kp_detector_params", "model_params."),
        KP_DETECTOR,
        "model_params.kp_detector_params",
    )
    generator_raw = dict(section(model, "generator_params", "model_params."))
    dense_raw = generator_raw.pop("dense_motion_params", None)
    generator = _fields(path, generator_raw, GENERATOR, "model_params.generator_params")
    dense_motion = None
    if dense_raw is not None:
        if not isinstance(dense_raw, dict):
            raise ConfigError(
                f"config {path}: model_params.generator_params.dense_motion_params "
                f"must be a mapping, got {dense_raw!r}"
            )
        dense_motion = _fields(
            path, dense_raw, DENSE_MOTION, "model_params.generator_params.dense_motion_params"
        )
    frame_shape = _frame_shape(path, raw.get("dataset_params"))
    return ModelConfig(path, common, kp_detector, generator, dense_motion, frame_shape)


def _fields(path, given, spec, prefix):
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise ConfigError(
            f"config {path}: unknown field {prefix}.{unknown[0]} "
            f"(the original's models take: {', '.join(spec)})"
        )
    out = {}
    for name, (check, what, default) in spec.items():
        if name not in given:
            if default is REQUIRED:
                raise ConfigError(f"config {path}: missing field {prefix}.{name} ({what})")
            out[name] = default
            continue
        if not check(given[name]):
            raise ConfigError(f"config {path}: {prefix}.{name} must be {what}, got {given[name]!r}")
        out[name] = given[name]
    return out


def _frame_shape(path, dataset):
    """``dataset_params.frame_shape`` as (height, width); the original's default is 256x256."""
    shape = (
        dataset.get("frame_shape", [256, 256, 3]) if isinstance(dataset, dict) else [256, 256, 3]
    )
    if (
        not isinstance(shape, (list, tuple))
        or len(shape) not in (2, 3)
        or not all(_positive_int(v) for v in shape)
    ):
        raise ConfigError(
            f"config {path}: dataset_params.frame_shape must be [height, width, 3], got {shape!r}"
        )
    return int(shape[0]), int(shape[1])
