"""``load_model``: the three Keras models of one config + checkpoint, behind the public API."""

import tensorflow as tf

from modules.convert.checkpoint import read_state_dicts
from modules.convert.config import load_config
from modules.convert.weights import load_state_dict
from modules.generator import OcclusionAwareGenerator
from modules.keypoint_detector import KPDetector
from modules.numpy_model import NumpyModel
from modules.runtime import exact_float32
from modules.signatures import Signatures


def build_models(config):
    """Keras models with the config's architecture (weights zero until loaded)."""
    return (
        KPDetector(config.common, config.kp_detector),
        OcclusionAwareGenerator(config.common, config.generator),
    )


class Model(NumpyModel):
    """One FOMM model. ``kp_detector``, ``process_kp`` and ``generator`` take keyword arrays
    and return dicts of numpy arrays (see README: Python API); ``encode_source`` and
    ``animate_encoded`` are the generator split into its per-video and per-frame parts.
    ``keras_kp_detector`` / ``keras_generator`` are the Keras models themselves and
    ``signatures`` the tf.functions that build.py exports. ``process_kp`` and
    ``encode_source`` run eagerly; the others too at first (``eager_first``), traced later
    (``EagerFirst``)."""

    def __init__(self, config, kp_detector, generator, eager_first=True):
        self.config = config
        self.keras_kp_detector = kp_detector
        self.keras_generator = generator
        self.signatures = Signatures(config, kp_detector, generator)
        functions = {}
        for name, function in self.signatures.functions().items():
            if name in ALWAYS_EAGER:
                calls = float("inf")
            else:
                calls = FIRST_CALLS_EAGER.get(name, 1) if eager_first else 0
            functions[name] = EagerFirst(function, calls)
        super().__init__(functions, self.signatures.input_shapes())


# Tracing a signature costs more than running it eagerly once or a few times (full-size vox,
# 2-core EPYC: process_kp's trace 0.67 s against 0.01-0.04 s an eager call; the per-frame
# generator's trace 0.6 s, about what eager execution loses on 2-3 batches of 4). So
# process_kp and encode_source (once per source image) always run eagerly, and with
# ``eager_first`` a video traces nothing for its first batch (kp_detector: the source, then
# the first batch). Eager and traced results differ in the last bits, so a caller that needs
# a video's frames not to depend on what the process ran before (the dataset modes: serial
# and Ray runs give the same bytes) passes eager_first=False. The exports use the
# tf.functions themselves.
ALWAYS_EAGER = ("process_kp", "encode_source")
FIRST_CALLS_EAGER = {"kp_detector": 2}


class EagerFirst:
    """A signature's tf.function, run as its Python function in eager mode for the first
    ``eager_calls`` calls (the inputs checked against its input signature, as the
    tf.function checks them), traced from then on."""

    def __init__(self, function, eager_calls):
        self.function = function
        self.eager_calls = eager_calls
        self.calls = 0

    def __call__(self, **inputs):
        if self.calls >= self.eager_calls:
            return self.function(**inputs)
        tensors = {}
        for spec in self.function.input_signature:
            if spec.name not in inputs:
                raise TypeError(f"missing input '{spec.name}'")
            value = tf.convert_to_tensor(inputs.pop(spec.name), spec.dtype)
            if not spec.shape.is_compatible_with(value.shape):
                raise ValueError(
                    f"input '{spec.name}' has shape {value.shape}; expected {spec.shape}"
                )
            tensors[spec.name] = value
        if inputs:
            raise TypeError(f"unexpected inputs: {', '.join(inputs)}")
        outputs = self.function.python_function(**tensors)
        self.calls += 1
        return outputs


def load_model(
    config_path,
    checkpoint_path,
    use_torch=False,
    precision=None,
    state_dicts=None,
    eager_first=True,
):
    """Builds the models of ``config_path`` and loads ``checkpoint_path`` (an original
    ``*.pth.tar``) into them. ``use_torch`` reads the checkpoint with torch.load instead of
    the built-in reader. ``precision`` 'bfloat16' runs the generator's per-frame
    convolutions in bfloat16 (see OcclusionAwareGenerator.set_precision); None or 'float32'
    is the exact port. ``state_dicts``: ``read_state_dicts(checkpoint_path)`` already read
    (run.py reads it while TensorFlow imports). ``eager_first``: see ``Model``. Raises
    ConfigError, CheckpointError or WeightError."""
    exact_float32(tf)
    config = load_config(config_path)
    if state_dicts is None:
        state_dicts = read_state_dicts(checkpoint_path, use_torch=use_torch)
    generator_state, kp_detector_state = state_dicts
    kp_detector, generator = build_models(config)
    load_state_dict(kp_detector, kp_detector_state, f"checkpoint {checkpoint_path} (kp_detector)")
    load_state_dict(generator, generator_state, f"checkpoint {checkpoint_path} (generator)")
    if precision == "bfloat16":
        generator.set_precision(tf.bfloat16)
    # Eager bfloat16 convolutions differ from the traced ones (up to 4e-3: graph rewrites
    # pick other kernels), so they run traced only, as the bfloat16 SavedModels do.
    eager_first = eager_first and precision != "bfloat16"
    return Model(config, kp_detector, generator, eager_first=eager_first)
