"""Reads the original's config files (``config/*.yaml``) as they are.

Only ``model_params`` and ``dataset_params.frame_shape`` matter for inference; the rest
(train_params, discriminator_params, ...) is read and ignored. Every field the models need is
validated and a missing or invalid one is reported by its full name.

Config files are user input: a file over ``MAX_BYTES`` is refused unread, aliases (``*name``)
may not expand the document past ``MAX_NODES`` values (a 1.3 KB "billion laughs" file expands
to hundreds of millions), and values quoted in errors are shortened with reprlib.
"""

import dataclasses
import os
import reprlib

import yaml

from ..errors import ConfigError

MAX_BYTES = 1 << 20  # the original's configs are under 2 KB
MAX_NODES = 100_000  # values, keys and collections, each alias counted as what it repeats
_SHORT = reprlib.Repr()  # Python 3.11's Repr takes no arguments
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = _SHORT.maxset = 6


def short(value, width=80):
    """``repr(value)`` cut to ``width`` characters, for error messages."""
    text = _SHORT.repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class _TooLarge(Exception):
    pass


def _expanded_size(root):
    """How many nodes the YAML node graph under ``root`` stands for once every alias is
    expanded; _TooLarge past MAX_NODES or for an alias inside itself. Each node is counted once
    (iteratively: a deep document does not reach Python's recursion limit)."""
    sizes = {}
    open_nodes = set()  # the nodes whose subtree is being counted: an ancestor again is a loop
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] > MAX_NODES:
                raise _TooLarge(f"expands to over {MAX_NODES} values through its aliases")
        elif key not in sizes:
            if key in open_nodes:
                raise _TooLarge("has an alias inside the value it names")
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _children(node):
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses documents whose aliases expand past MAX_NODES."""

    def compose_document(self):
        node = super().compose_document()
        _expanded_size(node)
        return node


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


def _field(check, what, default=dataclasses.MISSING):
    """A config field: how it is validated and what it must be, for the error message."""
    return dataclasses.field(default=default, metadata={"check": check, "what": what})


# The sections of the original's model_params, with its constructors' argument names and
# defaults; these dataclasses are what the network constructors take.


@dataclasses.dataclass(frozen=True)
class CommonParams:
    """``model_params.common_params``."""

    num_kp: int = _field(_positive_int, "a positive integer")
    num_channels: int = _field(_positive_int, "a positive integer")
    estimate_jacobian: bool = _field(_bool, "true or false", False)


@dataclasses.dataclass(frozen=True)
class KPDetectorParams:
    """``model_params.kp_detector_params``."""

    block_expansion: int = _field(_positive_int, "a positive integer")
    max_features: int = _field(_positive_int, "a positive integer")
    num_blocks: int = _field(_positive_int, "a positive integer")
    temperature: float = _field(_positive_number, "a positive number")
    scale_factor: float = _field(_scale, "a number in (0, 1]", 1)
    single_jacobian_map: bool = _field(_bool, "true or false", False)
    pad: int = _field(_non_negative_int, "a non-negative integer", 0)


@dataclasses.dataclass(frozen=True)
class DenseMotionParams:
    """``model_params.generator_params.dense_motion_params``."""

    block_expansion: int = _field(_positive_int, "a positive integer")
    max_features: int = _field(_positive_int, "a positive integer")
    num_blocks: int = _field(_positive_int, "a positive integer")
    scale_factor: float = _field(_scale, "a number in (0, 1]", 1)
    kp_variance: float = _field(_positive_number, "a positive number", 0.01)


@dataclasses.dataclass(frozen=True)
class GeneratorParams:
    """``model_params.generator_params``; ``dense_motion_params`` None: no dense motion
    network."""

    block_expansion: int = _field(_positive_int, "a positive integer")
    max_features: int = _field(_positive_int, "a positive integer")
    num_down_blocks: int = _field(_non_negative_int, "a non-negative integer")
    num_bottleneck_blocks: int = _field(_non_negative_int, "a non-negative integer")
    estimate_occlusion_map: bool = _field(_bool, "true or false", False)
    dense_motion_params: DenseMotionParams | None = None


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The validated model parameters of one config file; ``frame_shape`` is (height, width)."""

    path: str
    common: CommonParams
    kp_detector: KPDetectorParams
    generator: GeneratorParams
    frame_shape: tuple[int, int]

    @property
    def dense_motion(self):
        return self.generator.dense_motion_params

    @property
    def num_kp(self):
        return self.common.num_kp

    @property
    def estimate_jacobian(self):
        return self.common.estimate_jacobian

    @property
    def estimate_occlusion_map(self):
        return self.dense_motion is not None and self.generator.estimate_occlusion_map


def read_yaml(path):
    """A config file's YAML as it is; ConfigError when it is missing or not YAML."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path} (the original's configs are in config/)")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"config {path} cannot be read: {error.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(
            f"config {path} is over {MAX_BYTES >> 20} MB; a config is a few KB of YAML"
        )
    try:
        return yaml.load(data.decode("utf-8"), Loader=_Loader)
    except _TooLarge as error:
        raise ConfigError(f"config {path} {error}; write the values out instead") from None
    except RecursionError:
        raise ConfigError(f"config {path} is nested too deeply to be a config") from None
    except Exception as error:  # PyYAML's and its constructors' (int, float, date) errors
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
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
    prefix = "model_params."
    common = _fields(path, section(model, "common_params", prefix), CommonParams, prefix)
    kp_detector = _fields(
        path, section(model, "kp_detector_params", prefix), KPDetectorParams, prefix
    )
    generator_raw = dict(section(model, "generator_params", prefix))
    dense_raw = generator_raw.pop("dense_motion_params", None)
    dense_motion = None
    if dense_raw is not None:
        if not isinstance(dense_raw, dict):
            raise ConfigError(
                f"config {path}: model_params.generator_params.dense_motion_params "
                f"must be a mapping, got {short(dense_raw)}"
            )
        dense_motion = _fields(path, dense_raw, DenseMotionParams, "model_params.generator_params.")
    generator = _fields(
        path, generator_raw, GeneratorParams, prefix, dense_motion_params=dense_motion
    )
    frame_shape = _frame_shape(path, raw.get("dataset_params"))
    return ModelConfig(path, common, kp_detector, generator, frame_shape)


SECTIONS = {
    CommonParams: "common_params",
    KPDetectorParams: "kp_detector_params",
    GeneratorParams: "generator_params",
    DenseMotionParams: "dense_motion_params",
}


def _fields(path, given, params, parent, **nested):
    """``params`` (a section's dataclass) from the mapping ``given``, each field validated;
    ``nested`` are the sections already read inside it."""
    prefix = parent + SECTIONS[params]
    spec = {f.name: f for f in dataclasses.fields(params) if f.metadata}
    # Keys may be of any type (1, null, 2020-01-01): sorted by their repr, named shortened.
    unknown = sorted((key for key in given if key not in spec), key=repr)
    if unknown:
        name = unknown[0]
        name = name if isinstance(name, str) and len(name) <= 60 else short(name)
        raise ConfigError(
            f"config {path}: unknown field {prefix}.{name} "
            f"(the original's models take: {', '.join(spec)})"
        )
    values = {}
    for name, field in spec.items():
        check, what = field.metadata["check"], field.metadata["what"]
        if name not in given:
            if field.default is dataclasses.MISSING:
                raise ConfigError(f"config {path}: missing field {prefix}.{name} ({what})")
            continue
        if not check(given[name]):
            raise ConfigError(
                f"config {path}: {prefix}.{name} must be {what}, got {short(given[name])}"
            )
        values[name] = given[name]
    return params(**values, **nested)


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
            f"config {path}: dataset_params.frame_shape must be [height, width, 3], "
            f"got {short(shape)}"
        )
    return int(shape[0]), int(shape[1])
