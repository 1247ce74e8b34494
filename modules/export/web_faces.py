"""The web page's face detector: the three networks of MTCNN (the ``mtcnn`` package that
``--crop`` uses, modules/app/faces.py) as ONNX models, in ``web/models/mtcnn/``.

``pnet.onnx`` takes a normalized image of any size, ``rnet.onnx`` 24x24 and ``onet.onnx``
48x48 patches (NHWC, ``(uint8 - 127.5) / 128``); web/faces.js runs the package's pipeline
around them (pyramid, thresholds, NMS, box regression). ``faces.json`` says which file is which
and the settings of --crop and --paste_back (modules/app/faces.py, framing.py, paste.py) the
page uses. Written by ``build.py --web`` when
the ``faces`` extra is installed.
"""

import json
import os

from .. import extras
from ..atomic import replacing, write_file
from ..errors import InputError, UsageError

FOLDER = "mtcnn"
DESCRIPTION = "faces.json"
FORMAT = "fomm-faces-1"
# network -> (stage class of mtcnn.stages, input shape, output names in the model's order)
NETWORKS = {
    "pnet": ("StagePNet", (None, None, None, 3), ("bbox_reg", "bbox_class")),
    "rnet": ("StageRNet", (None, 24, 24, 3), ("bbox_reg", "bbox_class")),
    "onet": ("StageONet", (None, 48, 48, 3), ("bbox_reg", "landmarks", "bbox_class")),
}
WHAT = "the web page's face crop (build.py --web)"


def available():
    """Whether the faces extra (mtcnn) is installed, without importing it."""
    try:
        extras.check("mtcnn", "faces", WHAT)
    except UsageError:
        return False
    return True


def missing_message():
    return extras.message("mtcnn", "faces", WHAT, "the face detector mtcnn")


def onnx_models():
    """network -> serialized ONNX model of MTCNN's P-Net, R-Net and O-Net."""
    import tensorflow as tf

    from ..signatures import named_function
    from .onnx import convert_function

    stages = extras.require("mtcnn.stages", "faces", WHAT, "the face detector mtcnn")
    models = {}
    for network, (stage, shape, outputs) in NETWORKS.items():
        model = getattr(stages, stage)().model

        def call(inputs, model=model, outputs=outputs):
            return dict(zip(outputs, model(inputs["image"])))

        call.__name__ = network
        function = named_function(call, {"image": tf.TensorSpec(shape, tf.float32)})
        models[network] = convert_function(function, f"MTCNN's {network}")
    return models


def write_face_models(root):
    """Writes ``root/mtcnn/`` (the three ONNX models and faces.json) as a whole; returns (folder,
    size in bytes)."""
    from ..app.faces import DETECTION_SIDE, MIN_CONFIDENCE
    from ..app.framing import DRIVING_SAMPLES, INCREASE
    from ..app.paste import FEATHER

    models = onnx_models()
    files = [(f"{network}.onnx", data) for network, data in models.items()]
    meta = {
        "format": FORMAT,
        "detector": "MTCNN (mtcnn 1.0.0, MIT), as modules/app/faces.py runs it",
        "files": {network: f"{network}.onnx" for network in models},
        "detection_side": DETECTION_SIDE,
        "min_confidence": MIN_CONFIDENCE,
        "increase": INCREASE,
        "driving_samples": DRIVING_SAMPLES,
        "feather": FEATHER,
    }
    files.append((DESCRIPTION, json.dumps(meta, indent=1) + "\n"))
    folder = os.path.join(root, FOLDER)
    try:
        with replacing(folder) as tmp:
            for file, data in files:
                write_file(os.path.join(tmp, file), data)
    except OSError as error:
        raise InputError(
            f"cannot write the face detector to '{folder}' ({error.strerror or error}): "
            "give a writable folder with --web_models"
        ) from None
    return folder, sum(len(data) for _, data in files if isinstance(data, bytes))
