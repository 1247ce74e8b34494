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
    ``signatures`` the tf.functions that build.py exports."""

    def __init__(self, config, kp_detector, generator):
        self.config = config
        self.keras_kp_detector = kp_detector
        self.keras_generator = generator
        self.signatures = Signatures(config, kp_detector, generator)
        super().__init__(self.signatures.functions(), self.signatures.input_shapes())


def load_model(config_path, checkpoint_path, use_torch=False, precision=None):
    """Builds the models of ``config_path`` and loads ``checkpoint_path`` (an original
    ``*.pth.tar``) into them. ``use_torch`` reads the checkpoint with torch.load instead of
    the built-in reader. ``precision`` 'bfloat16' runs the generator's per-frame
    convolutions in bfloat16 (see OcclusionAwareGenerator.set_precision); None or 'float32'
    is the exact port. Raises ConfigError, CheckpointError or WeightError."""
    exact_float32(tf)
    config = load_config(config_path)
    generator_state, kp_detector_state = read_state_dicts(checkpoint_path, use_torch=use_torch)
    kp_detector, generator = build_models(config)
    load_state_dict(kp_detector, kp_detector_state, f"checkpoint {checkpoint_path} (kp_detector)")
    load_state_dict(generator, generator_state, f"checkpoint {checkpoint_path} (generator)")
    if precision == "bfloat16":
        generator.set_precision(tf.bfloat16)
    return Model(config, kp_detector, generator)
