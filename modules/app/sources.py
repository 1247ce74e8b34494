"""Where the three models come from: the Keras models (run.py), the SavedModels (test.py) or
the TF Lite models (testlite.py).

All three give the same interface, so one pipeline serves them: ``kp_detector``,
``process_kp``, ``generator``, ``encode_source`` and ``animate_encoded`` take keyword numpy
arrays and return dicts of numpy arrays; ``frame_shape``, ``num_kp`` and ``has_jacobian``
describe the model.
"""

import os

import numpy as np

from modules.errors import UsageError
from modules.export.contract import MODULES


class Source:
    """The model-description part of the interface, read from the kp_detector's outputs."""

    def describe(self, frame_shape):
        self.frame_shape = tuple(frame_shape)
        out = self.kp_detector(image=np.zeros((1, *self.frame_shape, 3), np.float32))
        self.num_kp = out["value"].shape[1]
        self.has_jacobian = "jacobian" in out


class KerasModels(Source):
    """``load_model(config, checkpoint)``: the Keras models, run directly."""

    def __init__(self, config_path, checkpoint_path, use_torch=False):
        from modules.convert.model import load_model

        self.wrap(load_model(config_path, checkpoint_path, use_torch=use_torch))

    @classmethod
    def from_model(cls, model):
        """From a ``modules.convert.model.Model`` already in memory."""
        source = cls.__new__(cls)
        source.wrap(model)
        return source

    def wrap(self, model):
        self.keras = model
        for name in ("kp_detector", "process_kp", "generator", "encode_source", "animate_encoded"):
            setattr(self, name, getattr(model, name))
        self.frame_shape = model.config.frame_shape
        self.num_kp = model.config.num_kp
        self.has_jacobian = model.config.estimate_jacobian


class _SavedSignature:
    def __init__(self, function):
        self.function = function

    def __call__(self, **inputs):
        import tensorflow as tf

        out = self.function(**{k: tf.constant(v, tf.float32) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}


class SavedModels(Source):
    """``saved_models/NAME/{kp_detector,process_kp,generator}/`` as written by build.py."""

    def __init__(self, directory, build_hint):
        import tensorflow as tf

        self.loaded = {}
        for module, signatures in MODULES.items():
            path = os.path.join(directory, module)
            if not os.path.isfile(os.path.join(path, "saved_model.pb")):
                raise UsageError(f"no SavedModel at {path}; build it with: {build_hint}")
            try:
                self.loaded[module] = tf.saved_model.load(path)
            except Exception as error:  # a damaged folder: TF raises many kinds
                raise UsageError(
                    f"cannot load the SavedModel {path} ({type(error).__name__}); "
                    f"rebuild it with: {build_hint}"
                ) from None
            for key, name in signatures.items():
                if key not in self.loaded[module].signatures:
                    raise UsageError(
                        f"the SavedModel {path} has no signature '{key}'; "
                        f"rebuild it with: {build_hint}"
                    )
                setattr(self, name, _SavedSignature(self.loaded[module].signatures[key]))
        image = (
            self.loaded["kp_detector"].signatures["serving_default"].structured_input_signature[1]
        )
        self.describe(image["image"].shape[1:3])


class LiteModels(Source):
    """``tflite/NAME/{kp_detector,process_kp,generator}.tflite`` on the LiteRT interpreter,
    with as many threads as cores (its default is one) and XNNPACK.

    Mobile builds work too (build.py --static_batch, --prediction_only, --hardcode): inputs
    are read from the signatures, batches are padded or split to a static batch, and flags
    fixed at build time are checked against the ones asked for instead of being passed."""

    def __init__(self, directory, build_hint, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        from modules.export.contract import HARDCODED_FLAGS_METADATA
        from modules.export.metadata import read_metadata

        num_threads = num_threads or os.cpu_count() or 1
        self.interpreters = {}
        for module, signatures in MODULES.items():
            path = os.path.join(directory, f"{module}.tflite")
            if not os.path.isfile(path):
                raise UsageError(f"no TF Lite model at {path}; build it with: {build_hint}")
            try:
                interpreter = Interpreter(model_path=path, num_threads=num_threads)
                runners = {key: interpreter.get_signature_runner(key) for key in signatures}
            except Exception as error:  # a damaged file: the interpreter raises many kinds
                raise UsageError(
                    f"cannot load the TF Lite model {path} ({error}); rebuild it with: {build_hint}"
                ) from None
            self.interpreters[module] = interpreter
            with open(path, "rb") as f:
                hardcoded = read_metadata(f.read(), HARDCODED_FLAGS_METADATA) or {}
            for key, name in signatures.items():
                setattr(self, name, _LiteSignature(runners[key], hardcoded, path))
        shape = self.interpreters["kp_detector"].get_signature_runner().get_input_details()
        self.describe(shape["image"]["shape_signature"][1:3])


class _LiteSignature:
    def __init__(self, runner, hardcoded, path):
        self.runner = runner
        self.hardcoded = hardcoded
        self.path = path
        # name -> static batch (None: dynamic or no batch dimension)
        self.static = {
            name: int(d["shape_signature"][0])
            if len(d["shape_signature"]) and d["shape_signature"][0] > 0
            else None
            for name, d in runner.get_input_details().items()
        }

    def __call__(self, **inputs):
        for flag, value in self.hardcoded.items():
            if float(inputs.pop(flag)) != value:
                raise UsageError(_hardcode_message(self.path, self.hardcoded))
        inputs = {k: np.asarray(v, np.float32) for k, v in inputs.items()}
        # Inputs whose static batch differs from the given one carry the frames (the source's
        # have batch 1 in every build): a shorter batch is padded with copies of its last
        # item, a longer one runs in pieces.
        framed = [k for k, n in self.static.items() if n and len(inputs[k]) != n]
        if not framed:
            return self.runner(**inputs)
        size = self.static[framed[0]]
        count = len(inputs[framed[0]])
        pieces = []
        for start in range(0, count, size):
            feed = dict(inputs)
            for k in framed:
                piece = inputs[k][start : start + size]
                pad = np.repeat(piece[-1:], size - len(piece), axis=0)
                feed[k] = np.concatenate([piece, pad]) if len(pad) else piece
            used = min(size, count - start)
            pieces.append({k: v[:used] for k, v in self.runner(**feed).items()})
        return {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}


def _hardcode_message(path, hardcoded):
    relative = hardcoded["use_relative_movement"] > 0.5
    adapt = hardcoded["adapt_movement_scale"] > 0.5
    wanted = " ".join(
        flag for flag, on in (("--relative", relative), ("--adapt_scale", adapt)) if on
    )
    return (
        f"{path} was built with --hardcode {int(relative)},{int(adapt)}: run with "
        f"{wanted or 'neither --relative nor --adapt_scale'}, or build without --hardcode"
    )
