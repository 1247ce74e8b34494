"""The models' public signatures: input names, shapes and the tf.functions behind them.

The same tf.functions are called by run.py (Keras), saved as the SavedModels' signatures and
converted to TF Lite, so the three targets share names, shapes and code. Every batch dimension
is dynamic, unless a mobile build asks for a static one. Models without jacobians have no
``*jacobian`` inputs or outputs.
"""

import inspect

import tensorflow as tf

from .keypoints import process_kp
from .layers import fast_convolutions

FLAGS = ("use_relative_movement", "use_relative_jacobian", "adapt_movement_scale")


def named_function(fn, specs):
    """A tf.function taking the inputs ``specs`` (name -> TensorSpec) by name; ``fn`` gets them
    as one dict. tf.function, SavedModel and TF Lite signatures take their input names from
    the Python signature, which is why the wrapper carries an explicit one."""
    signature = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in specs]
    )

    def wrapper(*args, **kwargs):
        return fn(dict(signature.bind(*args, **kwargs).arguments))

    wrapper.__signature__ = signature
    wrapper.__name__ = fn.__name__
    return tf.function(
        wrapper,
        input_signature=[
            tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, spec in specs.items()
        ],
        autograph=False,
    )


def _spec(*shape):
    return tf.TensorSpec(shape, tf.float32)


def kp_specs(role, num_kp, jacobian, batch=None):
    """The inputs of one keypoint set, e.g. ``kp_source_value`` [B, K, 2] and
    ``kp_source_jacobian`` [B, K, 2, 2]."""
    specs = {f"kp_{role}_value": _spec(batch, num_kp, 2)}
    if jacobian:
        specs[f"kp_{role}_jacobian"] = _spec(batch, num_kp, 2, 2)
    return specs


def kp_dict(inputs, role):
    kp = {"value": inputs[f"kp_{role}_value"]}
    if f"kp_{role}_jacobian" in inputs:
        kp["jacobian"] = inputs[f"kp_{role}_jacobian"]
    return kp


def hardcoded_flags(relative, adapt):
    """process_kp's flag values for ``--hardcode RELATIVE,ADAPT``: the jacobian follows the
    movement, as with the scripts' ``--relative``."""
    return {
        "use_relative_movement": float(relative),
        "use_relative_jacobian": float(relative),
        "adapt_movement_scale": float(adapt),
    }


class Signatures:
    """The tf.functions of one model: ``kp_detector``, ``process_kp``, ``generator`` and the
    generator's two halves ``encode_source`` / ``animate_encoded`` (the source's features,
    computed once per video, then the per-frame part).

    Mobile builds (build.py): ``static_batch`` N gives every input a static shape (batch N for
    frames and driving keypoints, 1 for the source, which the generator tiles to N);
    ``prediction_only`` leaves the generator one output, ``prediction``; ``hardcode``
    (a dict from ``hardcoded_flags``) fixes process_kp's flags, which are then no inputs.

    ``fast``: the faster forms of the convolutions to trace (``layers.fast_convolutions``):
    ``FAST_FORMS`` for TensorFlow itself (run.py, the SavedModels), ``TFLITE_FORMS`` for TF
    Lite, none for ONNX and TF.js."""

    def __init__(
        self,
        config,
        kp_detector,
        generator,
        static_batch=None,
        prediction_only=False,
        hardcode=None,
        fast=(),
    ):
        height, width = config.frame_shape
        channels = config.common.num_channels
        num_kp = config.num_kp
        jacobian = config.estimate_jacobian
        self.kp_detector_model = kp_detector
        self.generator_model = generator
        self.static_batch = static_batch
        self.hardcode = hardcode
        self.fast = fast
        self.outputs = ["prediction"]
        if config.dense_motion is not None and not prediction_only:
            self.outputs += ["mask", "deformation"]
            if config.estimate_occlusion_map:
                self.outputs.append("occlusion_map")
        # The source (image and keypoints) has batch 1 in static builds.
        one = 1 if static_batch else None

        image = _spec(static_batch, height, width, channels)
        source_image = _spec(one, height, width, channels)
        self.kp_detector = named_function(self._kp_detector, {"image": image})
        self.process_kp = named_function(
            self._process_kp,
            {
                **kp_specs("source", num_kp, jacobian, 1),
                **kp_specs("driving", num_kp, jacobian, static_batch),
                **kp_specs("initial", num_kp, jacobian, 1),
                **({} if hardcode else {flag: _spec() for flag in FLAGS}),
            },
        )
        keypoints = {
            **kp_specs("source", num_kp, jacobian, one),
            **kp_specs("driving", num_kp, jacobian, static_batch),
        }
        self.generator = named_function(
            self._generator, {"source_image": source_image, **keypoints}
        )

        # Traced, not run: only the shapes are needed.
        encoded = tf.function(generator.encode).get_concrete_function(image).structured_outputs
        self.encoded_specs = {f"source_{k}": _spec(one, *v.shape[1:]) for k, v in encoded.items()}
        self.encode_source = named_function(self._encode_source, {"source_image": source_image})
        self.animate_encoded = named_function(
            self._animate_encoded, {**self.encoded_specs, **keypoints}
        )

    def _kp_detector(self, inputs):
        with fast_convolutions(self.fast):
            return self.kp_detector_model(inputs["image"])

    def _process_kp(self, inputs):
        jacobians = {
            f"kp_{role}_jacobian": inputs.get(f"kp_{role}_jacobian")
            for role in ("source", "driving", "initial")
        }
        return process_kp(**{**inputs, **jacobians, **(self.hardcode or {})})

    def _generator(self, inputs):
        source_image, kp_source = inputs["source_image"], kp_dict(inputs, "source")
        if self.static_batch:
            # The earlier TF port's static builds tile the source to the batch (TILE is a
            # builtin every delegate takes; broadcasting a batch of 1 is not).
            source_image = tf.tile(source_image, [self.static_batch, 1, 1, 1])
            kp_source = {
                k: tf.tile(v, [self.static_batch] + [1] * (len(v.shape) - 1))
                for k, v in kp_source.items()
            }
        with fast_convolutions(self.fast):
            out = self.generator_model(
                source_image, kp_driving=kp_dict(inputs, "driving"), kp_source=kp_source
            )
        return {k: out[k] for k in self.outputs}

    def _encode_source(self, inputs):
        with fast_convolutions(self.fast):
            encoded = self.generator_model.encode(inputs["source_image"])
        return {f"source_{k}": v for k, v in encoded.items()}

    def _animate_encoded(self, inputs):
        encoded = {k[len("source_") :]: inputs[k] for k in self.encoded_specs}
        with fast_convolutions(self.fast):
            out = self.generator_model.decode(
                encoded, kp_driving=kp_dict(inputs, "driving"), kp_source=kp_dict(inputs, "source")
            )
        return {k: out[k] for k in self.outputs}

    def functions(self):
        """Name -> tf.function, for export."""
        return {
            "kp_detector": self.kp_detector,
            "process_kp": self.process_kp,
            "generator": self.generator,
            "encode_source": self.encode_source,
            "animate_encoded": self.animate_encoded,
        }

    def input_shapes(self):
        """Name -> {input name: shape}, as ``NumpyModel`` reads them."""
        return {
            name: {spec.name: spec.shape for spec in function.input_signature}
            for name, function in self.functions().items()
        }
