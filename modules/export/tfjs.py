"""TF.js graph-model export: the tensorflowjs converter, run from its own environment.

tensorflowjs 4.22 (the latest) requires tensorflow-decision-forests, whose releases pin older
TensorFlow versions, so it cannot be installed beside this project's TensorFlow. install.sh
gives it a virtual environment of its own, ``.venv-tfjs/`` (requirements-tfjs.txt); build.py
saves a SavedModel here and runs the converter there, in a subprocess. TensorFlow is imported
only to convert, so that build.py can say the converter is missing before anything loads.

A TF.js graph model has one signature, so each signature is its own folder: ``kp_detector/``,
``process_kp/`` and ``generator/`` (serving_default), and the generator's two halves
``generator_encode_source/`` and ``generator_animate_encoded/``.
"""

import inspect
import json
import os
import subprocess
import tempfile

from ..atomic import replacing
from ..errors import ExportError
from .contract import signature_stems, tfjs_dir

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(PROJECT, ".venv-tfjs")
INSTALL_HINT = "run bash install.sh (it creates .venv-tfjs/ with the tensorflowjs converter)"

# Runs in .venv-tfjs: converts each (signature, output folder) of one SavedModel in one process,
# so that TensorFlow starts once. convert() takes tensorflowjs_converter's command line.
_DRIVER = """
import json, sys
from tensorflowjs.converters.converter import convert
for argv in json.loads(sys.argv[1]):
    convert(argv)
"""


def converter_python():
    """The Python of the converter's environment, or an ExportError saying how to make it."""
    python = os.path.join(VENV, "bin", "python")
    if not os.path.isfile(python):
        raise ExportError(
            f"TF.js export needs the tensorflowjs converter in {VENV}: {INSTALL_HINT}"
        )
    return python


def _tiled_source(function, source_names):
    """``function`` with its batch-1 source inputs tiled to the driving batch. TF.js
    conversion drops the models' broadcast (``x + zeros_like(y)``: TensorFlow's graph optimizer
    removes the addition of zeros, shape change included), so the tiling is made explicit."""
    import tensorflow as tf

    from ..signatures import named_function

    names = inspect.signature(function.python_function).parameters
    specs = dict(zip(names, function.input_signature))

    def call(inputs):
        batch = tf.shape(inputs["kp_driving_value"])[0]
        inputs = dict(inputs)
        for name in source_names:
            source = inputs[name]
            multiples = tf.concat(
                [[batch // tf.shape(source)[0]], tf.ones([tf.rank(source) - 1], tf.int32)], 0
            )
            inputs[name] = tf.tile(source, multiples)
        return function(**inputs)

    call.__name__ = function.__name__
    return named_function(call, specs)


def tfjs_functions(signatures, module):
    """Signature key -> tf.function as converted for TF.js."""
    from .savedmodel import signature_functions

    functions = signature_functions(signatures, module)
    if module == "generator":
        functions["serving_default"] = _tiled_source(functions["serving_default"], ["source_image"])
        functions["animate_encoded"] = _tiled_source(
            functions["animate_encoded"], list(signatures.encoded_specs)
        )
    return functions


def convert_tfjs(signatures, modules, root, name, float16=False):
    """Writes the TF.js graph models of ``modules`` to ``root/NAME/STEM/`` (model.json and
    weight shards), one folder per signature, each atomically replaced once all converted.
    ``float16``: float16 weights (half the download, float32 compute)."""
    python = converter_python()
    with tempfile.TemporaryDirectory(prefix="fomm-tfjs-") as tmp:
        jobs, outputs = [], {}
        for module in modules:
            saved = os.path.join(tmp, f"saved_model_{module}")
            keys = _save(signatures, module, saved)
            for key in keys:
                stem = signature_stems(module)[key]
                outputs[stem] = (os.path.join(tmp, stem), keys[key])
                argv = [
                    "--input_format=tf_saved_model",
                    "--output_format=tfjs_graph_model",
                    f"--signature_name={key}",
                    "--saved_model_tags=serve",
                ]
                if float16:
                    argv.append("--quantize_float16=*")
                jobs.append([*argv, saved, outputs[stem][0]])
        # One process for every conversion, so that TensorFlow starts once.
        _run(python, jobs, ", ".join(modules))
        for stem, (out, input_names) in outputs.items():
            _name_inputs(os.path.join(out, "model.json"), input_names, stem)
        for stem, (out, _) in outputs.items():
            with replacing(os.path.join(tfjs_dir(root, name), stem)) as target:
                for entry in os.listdir(out):
                    os.rename(os.path.join(out, entry), os.path.join(target, entry))


def _save(signatures, module, directory):
    """Saves the SavedModel converted for ``module``; signature key -> its input names."""
    import tensorflow as tf

    functions = tfjs_functions(signatures, module)
    holder = tf.Module()
    concrete = {key: fn.get_concrete_function() for key, fn in functions.items()}
    for key, fn in concrete.items():
        setattr(holder, key, fn)
    if module == "kp_detector":
        holder.model = signatures.kp_detector_model
    elif module == "generator":
        holder.model = signatures.generator_model
    tf.saved_model.save(holder, directory, signatures=concrete)
    return {key: [spec.name for spec in fn.input_signature] for key, fn in functions.items()}


def _name_inputs(path, names, stem):
    """Gives model.json's signature inputs their SavedModel names. The converter matches graph
    inputs to signature names by shape, so inputs that share a shape (kp_source_jacobian and
    kp_driving_jacobian) keep their tensor name, 'kp_source_jacobian:0'. Every graph input is
    named after its signature input ('image:0' for 'image'), so the names come from there."""
    with open(path) as f:
        model = json.load(f)
    inputs = model["signature"]["inputs"]
    renamed = {tensor["name"].split(":")[0]: tensor for tensor in inputs.values()}
    if sorted(renamed) != sorted(names):
        raise ExportError(
            f"the TF.js model {stem} has inputs {sorted(renamed)}, not the signature's "
            f"{sorted(names)}; check the tensorflowjs version in .venv-tfjs/ ({INSTALL_HINT})"
        )
    model["signature"]["inputs"] = renamed
    with open(path, "w") as f:
        json.dump(model, f)


def _run(python, jobs, module):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTHONPATH", None)  # the converter's environment, not ours
    result = subprocess.run(
        [python, "-c", _DRIVER, json.dumps(jobs)], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise ExportError(
            f"the tensorflowjs converter failed on {module}: "
            f"{lines[-1] if lines else f'exit code {result.returncode}'}; "
            f"check .venv-tfjs/ ({INSTALL_HINT})"
        )
