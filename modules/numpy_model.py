"""The one numpy adapter of every model source: the Keras models (modules.convert.model), the
SavedModels and the TF Lite models (modules.app.sources). Imports only numpy, so that the
scripts can check their inputs before TensorFlow loads."""

import numpy as np


class NumpyModel:
    """A model behind its five signatures, called with keyword arrays (numpy or tf, cast to
    float32) and returning dicts of numpy arrays: the one numpy adapter of the Keras models,
    the SavedModels and the TF Lite models (``modules.app.sources.ModelSource``).

    ``frame_shape``, ``num_kp`` and ``has_jacobian`` are read from the signatures' inputs:
    ``kp_detector``'s ``image`` [B, H, W, C], ``process_kp``'s ``kp_source_value`` [1, K, 2]
    and, for a model with jacobians, ``kp_source_jacobian``.
    """

    holds_gil = False  # whether a model call keeps Python's GIL (threads beside it wait)

    def __init__(self, functions, input_shapes):
        """``functions``: name -> callable taking float32 numpy arrays by name and returning
        a mapping of arrays or tensors; ``input_shapes``: name -> {input name: shape}."""
        self._functions = dict(functions)
        image = input_shapes["kp_detector"]["image"]
        keypoints = input_shapes["process_kp"]
        self.frame_shape = (int(image[1]), int(image[2]))
        self.num_kp = int(keypoints["kp_source_value"][1])
        self.has_jacobian = "kp_source_jacobian" in keypoints

    def _call(self, name, inputs):
        for key in ("image", "source_image"):
            if key in inputs and not _is_float(inputs[key]):
                raise ValueError(
                    f"{name}: {key} is {inputs[key].dtype}; the models take float32 images in "
                    f"[0, 1] (divide uint8 frames by 255, or use fomm_tf.Animator, which takes "
                    f"them as they are)"
                )
        out = self._functions[name](**{k: np.asarray(v, np.float32) for k, v in inputs.items()})
        return {k: np.asarray(v) for k, v in out.items()}

    def kp_detector(self, **inputs):
        """``image`` -> ``value`` (and ``jacobian``)."""
        return self._call("kp_detector", inputs)

    def process_kp(self, **inputs):
        """Source, driving and initial keypoints and the three flags -> ``value`` (and
        ``jacobian``) of the normalized driving keypoints."""
        return self._call("process_kp", inputs)

    def generator(self, **inputs):
        """``source_image`` and source and driving keypoints -> ``prediction`` (and the dense
        motion's ``mask``, ``deformation``, ``occlusion_map``)."""
        return self._call("generator", inputs)

    def encode_source(self, **inputs):
        """``source_image`` -> ``source_features`` (and ``source_motion_image``)."""
        return self._call("encode_source", inputs)

    def animate_encoded(self, **inputs):
        """``encode_source``'s outputs and the keypoints -> as ``generator``."""
        return self._call("animate_encoded", inputs)


def _is_float(value):
    """Whether an array or tensor holds floats (a uint8 image would be taken as 0-255)."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        dtype = np.asarray(value).dtype
    if hasattr(dtype, "is_floating"):  # a TensorFlow dtype
        return dtype.is_floating
    return np.issubdtype(dtype, np.floating)
