"""What build.py writes and the scripts and tests read: one definition of each.

Imports nothing heavy, so that the scripts can check their inputs before TensorFlow loads.
"""

import os

# module -> {signature key: Signatures function name}
MODULES = {
    "kp_detector": {"serving_default": "kp_detector"},
    "process_kp": {"serving_default": "process_kp"},
    "generator": {
        "serving_default": "generator",
        "encode_source": "encode_source",
        "animate_encoded": "animate_encoded",
    },
}
MODULE_NAMES = tuple(MODULES)
QUANTIZATIONS = ("float16", "dynamic")
# run.py / test.py --precision; build.py --precision bfloat16 writes saved_models/NAME-bfloat16/.
PRECISIONS = ("float32", "bfloat16")
# Quantization is applied to the generator only: the keypoint detector is cheap and keypoint
# precision drives all the motion, process_kp has no weights.
QUANTIZED_MODULES = ("generator",)


def build_name(name, quantize=None):
    """The folder name of a build: ``NAME``, or ``NAME-MODE`` for a quantized TF Lite build."""
    return f"{name}-{quantize}" if quantize else name


def saved_model_dir(root, name, module=None):
    """``root/NAME`` or ``root/NAME/MODULE``: build.py's SavedModel folders."""
    folder = os.path.join(root, name)
    return os.path.join(folder, module) if module else folder


def tflite_dir(root, name, quantize=None):
    """``root/NAME`` or ``root/NAME-MODE``: build.py's TF Lite folders."""
    return os.path.join(root, build_name(name, quantize))


def tflite_path(folder, module):
    return os.path.join(folder, f"{module}.tflite")


def build_hint(name, quantize=None, precision=None):
    """The command that builds what a script needs."""
    hint = f"python build.py --model {name}" + (f" --quantize {quantize}" if quantize else "")
    return hint + (f" --precision {precision}" if precision not in (None, "float32") else "")


def built_models(root):
    """The builds in ``root`` (a saved_models/ or tflite/ folder) as the scripts' flags name
    them: ``vox``, ``vox --quantize dynamic``, ``vox --precision bfloat16``; for errors that
    list what there is."""
    if not os.path.isdir(root):
        return []
    suffixes = {f"-{mode}": f"--quantize {mode}" for mode in QUANTIZATIONS}
    suffixes.update({f"-{p}": f"--precision {p}" for p in PRECISIONS if p != "float32"})
    built = []
    for entry in sorted(os.listdir(root)):
        folder = os.path.join(root, entry)
        if not any(
            os.path.exists(os.path.join(folder, m)) or os.path.exists(tflite_path(folder, m))
            for m in MODULE_NAMES
        ):
            continue  # not build.py's: no model inside
        for suffix, flags in suffixes.items():
            if entry.endswith(suffix) and len(entry) > len(suffix):
                entry = f"{entry[: -len(suffix)]} {flags}"
                break
        built.append(entry)
    return built


# Beside a SavedModel's files, which TensorFlow does not read: JSON {"fast_convolutions":
# [forms]}, the faster convolutions it was traced with (layers.fast_convolutions).
SAVED_MODEL_FORMS = os.path.join("assets.extra", "fomm.json")

# TF Lite metadata entry of a process_kp built with --hardcode: JSON {flag: 0.0 or 1.0}.
HARDCODED_FLAGS_METADATA = "fomm_hardcoded_flags"


def onnx_dir(root, name):
    """``root/NAME``: build.py's ONNX folder."""
    return os.path.join(root, name)


def signature_stems(module):
    """Signature key -> file or folder stem of the one-signature formats (ONNX, TF.js):
    ``generator`` for serving_default, ``generator_encode_source`` for encode_source, ..."""
    return {
        key: module if key == "serving_default" else f"{module}_{key}" for key in MODULES[module]
    }


def onnx_path(folder, stem):
    """``folder/STEM.onnx``; STEM is a module or ``MODULE_SIGNATURE`` (generator_encode_source)."""
    return os.path.join(folder, f"{stem}.onnx")


def tfjs_dir(root, name, module=None):
    """``root/NAME`` or ``root/NAME/MODULE``: build.py's TF.js graph-model folders."""
    folder = os.path.join(root, name)
    return os.path.join(folder, module) if module else folder


# The kinds of web model that are ONNX conversions (build.py --web, --web_float16, --web_int8);
# the other kind, "litert" (--web_litert), is TF Lite (modules/export/web_litert.py).
ONNX_WEB_KINDS = ("float32", "float16", "int8")

# The web page's models (build.py --web, modules/export/web.py, web/fomm.js):
# role in the page -> (module, signature key, file in web/models/NAME/).
WEB_FILES = {
    "kp_detector": ("kp_detector", "serving_default", "kp_detector.onnx"),
    "process_kp": ("process_kp", "serving_default", "process_kp.onnx"),
    "encode_source": ("generator", "encode_source", "generator_encode_source.onnx"),
    "animate_encoded": ("generator", "animate_encoded", "generator_animate_encoded.onnx"),
}
WEB_MODEL_JSON = "model.json"
WEB_INDEX = "index.json"
WEB_FORMAT = "fomm-web-1"  # web/fomm.js MODEL_FORMAT
