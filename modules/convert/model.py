"""``load_model``: the three Keras models of one config + checkpoint, behind the public API."""

import functools
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf

from ..generator import OcclusionAwareGenerator
from ..keypoint_detector import KPDetector
from ..layers import DEVICE_FORMS, TFLITE_FORMS, device_kind
from ..numpy_model import NumpyModel
from ..runtime import exact_float32
from ..signatures import Signatures
from .checkpoint import read_state_dicts
from .config import load_config
from .weights import load_state_dict


def build_models(config):
    """Keras models with the config's architecture (weights zero until loaded)."""
    return (
        KPDetector(config.common, config.kp_detector),
        OcclusionAwareGenerator(config.common, config.generator),
    )


class Model(NumpyModel):
    """One FOMM model. ``kp_detector``, ``process_kp`` and ``generator`` take keyword arrays
    and return dicts of numpy arrays (see docs/python-api.md); ``encode_source`` and
    ``animate_encoded`` are the generator split into its per-video and per-frame parts.
    ``keras_kp_detector`` / ``keras_generator`` are the Keras models themselves,
    ``signatures`` the tf.functions that run here and in the SavedModels (with every form
    of ``layers.fast_convolutions``, or ``GPU_FORMS`` where TensorFlow may use a GPU),
    ``tflite_signatures`` those the TF Lite converter gets (``TFLITE_FORMS``) and
    ``portable_signatures`` those of ONNX and TF.js (the plain convolutions). ``process_kp``
    and ``encode_source`` run eagerly (``Eager``), the others through their tf.functions."""

    def __init__(self, config, kp_detector, generator):
        self.config = config
        self.keras_kp_detector = kp_detector
        self.keras_generator = generator
        self.signatures = self._signatures(fast=DEVICE_FORMS[device_kind()])
        functions = {
            name: Eager(function) if name in EAGER else function
            for name, function in self.signatures.functions().items()
        }
        super().__init__(functions, self.signatures.input_shapes())

    def trace_in_background(self):
        """Traces the per-frame signatures (``TRACED_IN_BACKGROUND``) in a thread, so that
        their trace overlaps the work before a video's first batch (reading the source and
        the video, the source's keypoints and encoding). A call that comes first waits for
        the trace under the tf.function's lock; either way the same graph runs every batch."""
        tracer = ThreadPoolExecutor(max_workers=1)
        for name in TRACED_IN_BACKGROUND:
            tracer.submit(getattr(self.signatures, name).get_concrete_function)
        tracer.shutdown(wait=False)  # its thread ends with the traces

    def device_signatures(self, kind):
        """The signatures TensorFlow runs well on a ``kind`` of device ("cpu" or "gpu"):
        ``signatures`` where that is this machine's, else traced for the other kind (build.py
        --savedmodel_device, for SavedModels that another machine runs)."""
        if DEVICE_FORMS[kind] == self.signatures.fast:
            return self.signatures
        return self._signatures(fast=DEVICE_FORMS[kind])

    @functools.cached_property
    def portable_signatures(self):
        return self._signatures()

    @functools.cached_property
    def tflite_signatures(self):
        return self.mobile_signatures()

    def mobile_signatures(
        self, static_batch=None, prediction_only=False, hardcode=None, fast=TFLITE_FORMS
    ):
        """The TF Lite converter's signatures with the mobile builds' options (``Signatures``);
        ``fast``: the convolutions' faster forms (``layers.fast_convolutions``)."""
        return self._signatures(
            static_batch=static_batch,
            prediction_only=prediction_only,
            hardcode=hardcode,
            fast=fast,
        )

    def _signatures(self, **options):
        return Signatures(self.config, self.keras_kp_detector, self.keras_generator, **options)


# Signatures that cost more to trace than they ever cost eagerly in a run (full-size vox,
# 2-core EPYC): process_kp's trace takes 0.67 s against 0.01-0.04 s an eager call, and
# encode_source runs once per source image. Each signature always takes the same path, so a
# video's frames do not depend on what the process ran before. (The per-frame signatures stay
# traced: running a video's first batch eagerly saved their trace, but made that batch's frames
# differ in the last bits from the traced batches after it.)
EAGER = ("process_kp", "encode_source")
# animate_encoded's trace, 0.6-0.7 s on the full-size vox model, is the longest; the pipeline
# calls the kp_detector first, on the source image.
TRACED_IN_BACKGROUND = ("animate_encoded",)


class Eager:
    """A signature's tf.function run as its Python function in eager mode, the inputs
    checked against its input signature as the tf.function checks them."""

    def __init__(self, function):
        self.function = function
        self.input_signature = function.input_signature

    def __call__(self, **inputs):
        tensors = {}
        for spec in self.input_signature:
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
        return self.function.python_function(**tensors)


def load_model(config_path, checkpoint_path, use_torch=False, precision=None, state_dicts=None):
    """Builds the models of ``config_path`` and loads ``checkpoint_path`` (an original
    ``*.pth.tar``) into them. ``use_torch`` reads the checkpoint with torch.load instead of
    the built-in reader. ``precision`` 'bfloat16' runs the generator's per-frame
    convolutions in bfloat16 (see OcclusionAwareGenerator.set_precision); None or 'float32'
    is the exact port. ``state_dicts``: ``read_state_dicts(checkpoint_path)`` already read
    (run.py reads it while TensorFlow imports). Raises ConfigError, CheckpointError or
    WeightError."""
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
    return Model(config, kp_detector, generator)
