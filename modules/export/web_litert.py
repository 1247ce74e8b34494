"""``build.py --web_litert``: the web page's models for LiteRT.js (``@litertjs/core``: TF Lite
on XNNPACK in WebAssembly), in ``web/models/NAME-litert/``.

LiteRT.js runs the per-frame generator about twice as fast as ONNX Runtime Web (docs/web.md),
but only with static shapes: the files are ``build.py --static_batch 1 --quantize dynamic``'s
``kp_detector.tflite``, ``process_kp.tflite`` and ``generator.tflite`` (int8 weights, activations
quantized on the fly, in the layers that carry the per-frame work; modules/export/quantize.py),
and the page runs them one frame at a time. ``model.json`` says ``"runtime": "litertjs
(wasm)"`` and which signature of which file runs each of the page's four models.
"""

from .contract import WEB_FILES, WEB_MODEL_JSON, tflite_path

RUNTIME = "litertjs (wasm)"  # web/fomm.js LITERT_RUNTIME
QUANTIZE = "dynamic"


def litert_files(model):
    """(file name, bytes or text) of every file of the LiteRT.js web model, model.json last."""
    from .tflite import convert_tflite
    from .web import model_json

    signatures = model.mobile_signatures(static_batch=1)
    files, interpreters = [], {}
    for module in dict.fromkeys(module for module, _, _ in WEB_FILES.values()):
        flatbuffer = convert_tflite(signatures, module, QUANTIZE)
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
    text = model_json(model.config, description, files, "int8", RUNTIME, batch=1)
    return [*files, (WEB_MODEL_JSON, text)]


def _interpreter(flatbuffer):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=flatbuffer)
