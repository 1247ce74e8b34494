"""``build.py --web_litert``: the web page's models for LiteRT.js (``@litertjs/core``: TF Lite
on XNNPACK in WebAssembly), in ``web/models/NAME-litert/``.

LiteRT.js runs the per-frame generator faster than ONNX Runtime Web (docs/web.md), but only
with static shapes: the files are ``kp_detector.tflite``, ``process_kp.tflite`` and
``generator.tflite`` of ``build.py --static_batch 1``, float32, with the generator's bottleneck
by Winograd's F(4x4, 3x3) (``layers.WEB_LITERT_FORMS``). In WebAssembly that halves the
bottleneck's time, where int8 convolutions (``--quantize dynamic``) are barely faster than
float32 ones, and the frames stay within float32 rounding of the other builds'. The page
runs them one frame at a time. ``model.json`` says ``"runtime": "litertjs (wasm)"`` and which
signature of which file runs each of the page's four models.
"""

from ..layers import WEB_LITERT_FORMS
from .contract import WEB_FILES, WEB_MODEL_JSON, tflite_path

RUNTIME = "litertjs (wasm)"  # web/fomm.js LITERT_RUNTIME


def litert_files(model):
    """(file name, bytes or text) of every file of the LiteRT.js web model, model.json last."""
    from .tflite import convert_tflite
    from .web import model_json

    signatures = model.mobile_signatures(static_batch=1, fast=WEB_LITERT_FORMS)
    files, interpreters = [], {}
    for module in dict.fromkeys(module for module, _, _ in WEB_FILES.values()):
        flatbuffer = convert_tflite(signatures, module)
        files.append((tflite_path("", module), flatbuffer))
        interpreters[module] = _interpreter(flatbuffer)
    description = {}
    for role, (module, signature, _) in WEB_FILES.items():
        runner = interpreters[module].get_signature_runner(signature)
        description[role] = {
            "file": tflite_path("", module),
            "signature": signature,
            "inputs": sorted(runner.get_input_details()),
            "outputs": sorted(runner.get_output_details()),
        }
    text = model_json(model.config, description, files, "float32", RUNTIME, batch=1)
    return [*files, (WEB_MODEL_JSON, text)]


def _interpreter(flatbuffer):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=flatbuffer)
