"""Where the three models come from: the Keras models (run.py), the SavedModels (test.py) or
the TF Lite models (testlite.py).

All three are ``ModelSource``s, so one pipeline serves them. Each is a
``modules.numpy_model.NumpyModel``: the model's signatures behind one numpy adapter, with
``frame_shape``, ``num_kp`` and ``has_jacobian`` read from the signatures' input shapes.
The Keras models are ``modules.convert.model.Model`` (``load_model``) itself.
"""

import os
import sys
from typing import Protocol, runtime_checkable

import numpy as np

from .. import extras
from ..errors import UsageError
from ..export.contract import (
    MODULES,
    SAVED_MODEL_FORMS,
    onnx_path,
    signature_stems,
    tflite_path,
)
from ..numpy_model import NumpyModel

Arrays = dict[str, np.ndarray]


def saved_model_paths(directory, build_hint):
    """``{module: folder}`` of build.py's SavedModels, each checked to hold saved_model.pb
    (no TensorFlow needed: the scripts call this before it loads)."""
    paths = {module: os.path.join(directory, module) for module in MODULES}
    for path in paths.values():
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise UsageError(f"no SavedModel at {path}; build it with: {build_hint}")
    return paths


def tflite_paths(directory, build_hint):
    """``{module: file}`` of build.py's TF Lite models, each checked to be a readable file."""
    paths = {module: tflite_path(directory, module) for module in MODULES}
    for path in paths.values():
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise UsageError(f"no TF Lite model at {path}; build it with: {build_hint}")
    return paths


@runtime_checkable
class ModelSource(Protocol):
    """What the pipeline needs of a model. The methods take keyword arrays (numpy or tf) with
    the names of docs/exports.md's signature table and return dicts of numpy arrays."""

    frame_shape: tuple[int, int]  # (height, width) of the images the models take
    num_kp: int
    has_jacobian: bool  # whether keypoints carry ``*_jacobian`` arrays

    def kp_detector(self, *, image) -> Arrays:
        """``image`` [B, H, W, 3] -> ``value`` [B, K, 2] (and ``jacobian`` [B, K, 2, 2])."""

    def process_kp(self, **keypoints_and_flags) -> Arrays:
        """Source, driving and initial keypoints and the three flags -> normalized driving
        keypoints."""

    def generator(self, **images_and_keypoints) -> Arrays:
        """``source_image`` and source and driving keypoints -> ``prediction`` (and the dense
        motion's outputs)."""

    def encode_source(self, *, source_image) -> Arrays:
        """The generator's per-video part: ``source_features``, ``source_motion_image``."""

    def animate_encoded(self, **encoded_and_keypoints) -> Arrays:
        """The generator's per-frame part, from ``encode_source``'s outputs and keypoints."""


class SavedModels(NumpyModel):
    """``saved_models/NAME/{kp_detector,process_kp,generator}/`` as written by build.py."""

    def __init__(self, directory, build_hint):
        import tensorflow as tf

        self.loaded = {}
        functions, input_shapes = {}, {}
        paths = saved_model_paths(directory, build_hint)
        for module, signatures in MODULES.items():
            path = paths[module]
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
                functions[name] = self.loaded[module].signatures[key]
                specs = functions[name].structured_input_signature[1]
                input_shapes[name] = {k: spec.shape for k, spec in specs.items()}
        note = device_note(paths["generator"], build_hint)
        if note:
            print(note, file=sys.stderr)
        super().__init__(functions, input_shapes)


def device_note(path, build_hint):
    """A one-line note when the SavedModel at ``path`` was traced for another kind of device
    than this machine's (build.py --savedmodel_device), else None. SavedModels without the
    record (``SAVED_MODEL_FORMS``), or with an unreadable one, get no note."""
    from ..atomic import read_record
    from ..layers import DEVICE_FORMS, device_kind

    try:
        forms = tuple(read_record(os.path.join(path, SAVED_MODEL_FORMS))["fast_convolutions"])
    except (KeyError, TypeError):  # no record (None), or not the record's shape
        return None
    here = device_kind()
    traced = [kind for kind, kind_forms in DEVICE_FORMS.items() if kind_forms == forms]
    if not traced or traced[0] == here:
        return None
    return (
        f"note: {path} was traced for a {traced[0].upper()}; on this {here.upper()} it runs "
        f"faster rebuilt with: {build_hint} --savedmodel_device {here}"
    )


class LiteModels(NumpyModel):
    """``tflite/NAME/{kp_detector,process_kp,generator}.tflite`` on LiteRT (``CompiledModel``,
    XNNPACK), with as many threads as cores (its default is one). ``weight_cache``: a
    ``modules.app.weight_cache.WeightCache`` that keeps XNNPACK's packed weights between runs
    (testlite.py's default); None packs them in memory.

    Mobile builds work too (build.py --static_batch, --prediction_only, --hardcode): inputs
    are read from the signatures, batches are padded or split to a static batch, and flags
    fixed at build time are checked against the ones asked for instead of being passed."""

    holds_gil = True  # CompiledModel.run_by_index does not release it (docs/speed.md)

    def __init__(self, directory, build_hint, num_threads=None, weight_cache=None):
        from ..export.contract import HARDCODED_FLAGS_METADATA
        from .litert import IN_MEMORY, LiteModel

        num_threads = num_threads or os.cpu_count() or 1
        functions, input_shapes = {}, {}
        paths = tflite_paths(directory, build_hint)
        for module, signatures in MODULES.items():
            path = paths[module]
            entry = weight_cache.entry(path) if weight_cache else None
            try:
                lite = LiteModel(path, num_threads, entry.path if entry else IN_MEMORY)
                runners = {key: lite.runners[key] for key in signatures}
                hardcoded = lite.metadata(HARDCODED_FLAGS_METADATA) or {}
            except Exception as error:  # a damaged file: LiteRT raises many kinds
                if entry:
                    entry.discard()
                reason = f"no signature {error}" if isinstance(error, KeyError) else error
                raise UsageError(
                    f"cannot load the TF Lite model {path} ({reason}); "
                    f"rebuild it with: {build_hint}"
                ) from None
            if entry:
                entry.commit()
            for key, name in signatures.items():
                functions[name] = _LiteRunner(runners[key], hardcoded, path)
                details = runners[key].get_input_details()
                input_shapes[name] = {k: d["shape_signature"] for k, d in details.items()}
        super().__init__(functions, input_shapes)


class _LiteRunner:
    """One signature of a TF Lite model on float32 numpy inputs (from ``NumpyModel``): the
    static batch of a mobile build and the flags it fixed, which are checked, not passed."""

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


class OnnxModels(NumpyModel):
    """``onnx/NAME/*.onnx`` as written by ``build.py --onnx``, on onnxruntime's CPU provider."""

    def __init__(self, directory, build_hint):
        onnxruntime = extras.require("onnxruntime", "onnx", "running ONNX models")

        from ..export.manifest import verify

        stems = [stem for module in MODULES for stem in signature_stems(module).values()]
        for path in [onnx_path(directory, stem) for stem in stems]:
            if not os.path.isfile(path):
                raise UsageError(f"no ONNX model at {path}; build it with: {build_hint}")
        verify(directory, [os.path.basename(onnx_path("", stem)) for stem in stems], build_hint)
        functions, input_shapes = {}, {}
        for module, signatures in MODULES.items():
            for key, stem in signature_stems(module).items():
                path = onnx_path(directory, stem)
                try:
                    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
                except Exception as error:  # a damaged file: onnxruntime raises many kinds
                    raise UsageError(
                        f"cannot load the ONNX model {path} ({type(error).__name__}); "
                        f"rebuild it with: {build_hint}"
                    ) from None
                functions[signatures[key]] = _OnnxRunner(session)
                input_shapes[signatures[key]] = {i.name: i.shape for i in session.get_inputs()}
        super().__init__(functions, input_shapes)


class _OnnxRunner:
    """One ONNX model on float32 numpy inputs, returning its outputs by name."""

    def __init__(self, session):
        self.session = session
        self.outputs = [o.name for o in session.get_outputs()]

    def __call__(self, **inputs):
        return dict(zip(self.outputs, self.session.run(self.outputs, inputs)))
