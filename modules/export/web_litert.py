"""``build.py --web_litert``: the web page's models for LiteRT.js (``@litertjs/core``: TF Lite
on XNNPACK in WebAssembly), in ``web/models/NAME-litert/``.

LiteRT.js runs the per-frame generator about twice as fast as ONNX Runtime Web (docs/web.md),
but only with static shapes: the files are ``build.py --static_batch 1 --quantize dynamic``'s
``kp_detector.tflite``, ``process_kp.tflite`` and ``generator.tflite`` (int8 weights, activations
quantized on the fly, in the layers that carry the per-frame work; modules/export/quantize.py),
and the page runs them one frame at a time. ``model.json`` says ``"runtime": "litertjs
(wasm)"`` and which signature of which file runs each of the page's four models.
"""

from .contract import WEB_FILES, WEB_FORMAT, WEB_MODEL_JSON, tflite_path

RUNTIME = "litertjs (wasm)"  # web/fomm.js LITERT_RUNTIME
QUANTIZE = "dynamic"


def litert_files(model):
    """(file name, bytes or text) of every file of the LiteRT.js web model, model.json last."""
    import json

    from .tflite import convert_tflite

    signatures = model.mobile_signatures(static_batch=1)
    files, flatbuffers = [], {}
    for module in dict.fromkeys(module for module, _, _ in WEB_FILES.values()):
        file = tflite_path("", module)
        flatbuffers[module] = convert_tflite(signatures, module, QUANTIZE)
        files.append((file, flatbuffers[module]))
    description = {}
    for role, (module, signature, _) in WEB_FILES.items():
        inputs, outputs = io_names(flatbuffers[module], signature)
        description[role] = {
            "file": tflite_path("", module),
            "signature": signature,
            "inputs": inputs,
            "outputs": outputs,
        }
    height, width = model.config.frame_shape
    meta = {
        "format": WEB_FORMAT,
        "frame_shape": [height, width, model.config.common.num_channels],
        "num_kp": model.config.num_kp,
        "jacobian": bool(model.config.estimate_jacobian),
        "weights": "int8",
        "runtime": RUNTIME,
        "batch": 1,
        "files": {role: entry["file"] for role, entry in description.items()},
        "models": description,
        "size_bytes": sum(len(data) for _, data in files),
    }
    files.append((WEB_MODEL_JSON, json.dumps(meta, indent=1) + "\n"))
    return files


def io_names(flatbuffer, signature):
    """(input names, output names) of one signature of a TF Lite flatbuffer."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=flatbuffer).get_signature_runner(signature)
    return sorted(runner.get_input_details()), sorted(runner.get_output_details())
