"""What the web page (web/index.html) needs: ONNX models for ONNX Runtime Web plus model.json.

``web/models/NAME/`` holds ``kp_detector.onnx``, ``process_kp.onnx`` and the generator's two
halves ``generator_encode_source.onnx`` / ``generator_animate_encoded.onnx`` (the page encodes
the source once and runs only the per-frame half per frame), converted by
modules/export/onnx.py, and ``model.json``, which tells the page the frame shape, the number
of keypoints, whether the model has jacobians and which file holds which model.
``web/models/index.json`` lists every web model in the folder, for the page's model menu.

With float16 weights (``NAME-float16/``) the generator's weights are stored as float16 and
cast back to float32 when the model loads: half the download, float32 compute (as TF Lite's
float16 mode). The keypoint detector stays float32, as in the quantized TF Lite builds.
With int8 (``NAME-int8/``) the per-frame generator's heavy convolutions run in int8
(``int8_convolutions``); the rest stays float32.
"""

import json
import os

from .. import extras
from ..atomic import replacing, write_file
from ..errors import ExportError, InputError
from .contract import (
    ONNX_WEB_KINDS,
    QUANTIZED_MODULES,
    WEB_FILES,
    WEB_FORMAT,
    WEB_INDEX,
    WEB_MODEL_JSON,
    build_name,
)

RUNTIME = "onnxruntime-web (wasm)"  # model.json's runtime for the ONNX models
# Weights smaller than this stay float32 (biases, norms): they weigh nothing, and the shape
# constants among them must keep their type.
FLOAT16_MIN_SIZE = 64


def _onnx():
    """The onnx package, else an ExportError saying how to install it."""
    what = "the web page's models (build.py --web)"
    return extras.require("onnx", "onnx", what, error=ExportError)


def float16_weights(model_bytes):
    """An ONNX model whose float32 initializers (weights) are stored as float16, each followed
    by a Cast back to float32: half the size, the same float32 graph otherwise."""
    import numpy as np

    onnx = _onnx()
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    kept, casts = [], []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or np.prod(init.dims) < FLOAT16_MIN_SIZE:
            kept.append(init)
            continue
        half = numpy_helper.from_array(
            numpy_helper.to_array(init).astype(np.float16), f"{init.name}__float16"
        )
        kept.append(half)
        casts.append(
            helper.make_node(
                "Cast",
                [half.name],
                [init.name],
                to=onnx.TensorProto.FLOAT,
                name=f"{half.name}_cast",
            )
        )
    # A graph input with an initializer's name can override it; the float32 value is now a
    # node output, so such inputs go.
    names = {node.output[0] for node in casts}
    inputs = [i for i in graph.input if i.name not in names]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.input[:]
    graph.input.extend(inputs)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return model.SerializeToString()


# --web_int8's layers: the generator's bottleneck convolutions but the first (whose rounding
# every later block carries, modules/export/quantize.py). TF Lite's selective int8 also takes
# the up blocks; here they would bring the full-size vox model's frames from 35.8 to 34.4 dB.
INT8_LAYERS = r"(^|/)bottleneck\."


def int8_convolutions(model_bytes):
    """--web_int8: the per-frame generator's INT8_LAYERS as ONNX Runtime's dynamic int8
    convolutions (ConvInteger): uint8 weights, activations quantized to uint8 on the fly from
    each batch's own range, so nothing is calibrated. Everything else (keypoints, jacobians,
    the dense motion network and the sampling grids, the up blocks, the final convolution)
    stays float32."""
    import re
    import tempfile

    onnx = _onnx()
    quantization = extras.require(
        "onnxruntime.quantization", "onnx", "build.py --web_int8", "onnxruntime", ExportError
    )
    from .quantize import FLOAT32_LAYERS

    model = onnx.load_from_string(model_bytes)
    nodes = [
        node.name
        for node in model.graph.node
        if node.op_type == "Conv"
        and re.search(INT8_LAYERS, node.input[1])
        and not re.search(FLOAT32_LAYERS, node.input[1])
    ]
    if not nodes:
        raise ExportError("--web_int8: the generator has no bottleneck convolution")
    with tempfile.TemporaryDirectory(prefix="fomm-int8-") as tmp:
        path = os.path.join(tmp, "int8.onnx")
        quantization.quantize_dynamic(
            model,
            path,
            op_types_to_quantize=["Conv"],
            nodes_to_quantize=nodes,
            weight_type=quantization.QuantType.QUInt8,
        )
        with open(path, "rb") as f:
            return f.read()


def io_names(model_bytes):
    """(input names, output names) of a serialized ONNX model, without initializers."""
    graph = _onnx().load_from_string(model_bytes).graph
    initializers = {init.name for init in graph.initializer}
    return (
        [i.name for i in graph.input if i.name not in initializers],
        [o.name for o in graph.output],
    )


def onnx_models(model):
    """role -> serialized float32 ONNX model, for every model the page runs."""
    from .onnx import convert_onnx

    return {
        role: convert_onnx(model.portable_signatures, module, signature)
        for role, (module, signature, _) in WEB_FILES.items()
    }


def web_files(config, onnx, weights="float32"):
    """(file name, bytes or text) of every file of a web model, model.json last; ``onnx``
    is ``onnx_models``'s result; ``weights``: float32, float16 or int8."""
    files, description = [], {}
    for role, (module, _, file) in WEB_FILES.items():
        data = onnx[role]
        if weights == "float16" and module in QUANTIZED_MODULES:
            data = float16_weights(data)
        if weights == "int8" and role == "animate_encoded":  # encode_source runs once
            data = int8_convolutions(data)
        inputs, outputs = io_names(data)
        description[role] = {"file": file, "inputs": inputs, "outputs": outputs}
        files.append((file, data))
    files.append((WEB_MODEL_JSON, model_json(config, description, files, weights, RUNTIME)))
    return files


def model_json(config, description, files, weights, runtime, **extra):
    """The text of a web model's model.json: the model's shapes, ``runtime`` (the page's
    runtime for it), ``extra`` keys, and ``description`` (role -> its file, inputs and
    outputs) of ``files`` ((name, bytes) pairs)."""
    height, width = config.frame_shape
    meta = {
        "format": WEB_FORMAT,
        "frame_shape": [height, width, config.common.num_channels],
        "num_kp": config.num_kp,
        "jacobian": bool(config.estimate_jacobian),
        "weights": weights,
        "runtime": runtime,
        **extra,
        "files": {role: entry["file"] for role, entry in description.items()},
        "models": description,
        "size_bytes": sum(len(data) for _, data in files),
    }
    return json.dumps(meta, indent=1) + "\n"


def write_web_models(model, root, name, weights=("float32",)):
    """Writes ``root/NAME/`` (float32 weights), ``root/NAME-float16/``,
    ``root/NAME-int8/`` and/or ``root/NAME-litert/`` (modules/export/web_litert.py), each as
    a whole (the ONNX models converted once for all), then refreshes ``root/index.json``;
    returns (folder, size in bytes) of each."""
    from .web_litert import litert_files

    onnx = onnx_models(model) if set(weights) & set(ONNX_WEB_KINDS) else None
    written = []
    for kind in weights:
        folder = os.path.join(root, build_name(name, None if kind == "float32" else kind))
        if kind == "litert":
            files = litert_files(model)
        else:
            files = web_files(model.config, onnx, kind)
        try:
            with replacing(folder) as tmp:
                for file, data in files:
                    write_file(os.path.join(tmp, file), data)
            write_index(root)
        except OSError as error:
            raise InputError(
                f"cannot write the web models to '{folder}' ({error.strerror or error}): "
                "give a writable folder with --web_models"
            ) from None
        written.append((folder, sum(len(d) for _, d in files if isinstance(d, bytes))))
    return written


def write_index(root):
    """``root/index.json``: the web models in ``root`` (folders with a model.json of this
    format), with what the page's model menu shows."""
    models = []
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry, WEB_MODEL_JSON)
        if entry.startswith(".") or not os.path.isfile(path):
            continue
        try:
            with open(path) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("format") == WEB_FORMAT:
            models.append(
                {
                    "name": entry,
                    "frame_shape": meta.get("frame_shape"),
                    "weights": meta.get("weights"),
                    "size_bytes": meta.get("size_bytes"),
                }
            )
    write_file(os.path.join(root, WEB_INDEX), json.dumps({"models": models}, indent=1) + "\n")
