"""Exports one model's signatures as SavedModels and TF Lite models.

Each of the three modules (kp_detector, process_kp, generator) becomes one SavedModel folder
and one .tflite file whose ``serving_default`` signature has the ``load_model`` API's names;
the generator also carries ``encode_source`` and ``animate_encoded``. Every write goes to a
temporary path beside the target that is renamed into place only when complete.
"""
import collections
import contextlib
import gc
import inspect
import os
import shutil
import tempfile

import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from modules.quantize import keep_int8_only
from modules.signatures import named_function

# module -> {signature name: Signatures function name}
MODULES = {
    "kp_detector": {"serving_default": "kp_detector"},
    "process_kp": {"serving_default": "process_kp"},
    "generator": {"serving_default": "generator", "encode_source": "encode_source",
                  "animate_encoded": "animate_encoded"},
}
QUANTIZATIONS = ("float16", "dynamic")
# Quantization is applied to the generator only: the keypoint detector is cheap and keypoint
# precision drives all the motion, process_kp has no weights.
QUANTIZED_MODULES = ("generator",)


class ExportError(Exception):
    """A model that cannot be exported as asked."""


def signature_functions(signatures, module):
    functions = signatures.functions()
    return {key: functions[name] for key, name in MODULES[module].items()}


def save_saved_model(signatures, module, directory):
    """Writes the SavedModel of ``module`` to ``directory`` (atomically replaced)."""
    functions = signature_functions(signatures, module)
    holder = tf.Module()
    if module == "kp_detector":
        holder.model = signatures.kp_detector_model
    elif module == "generator":
        holder.model = signatures.generator_model
    concrete = {key: fn.get_concrete_function() for key, fn in functions.items()}
    for key, fn in concrete.items():
        setattr(holder, key, fn)
    with replacing(directory) as tmp:
        tf.saved_model.save(holder, tmp, signatures=concrete)


def convert_tflite(signatures, module, quantize=None):
    """The TF Lite flatbuffer of ``module``: builtin ops only, weights as constants shared by
    all signatures, dynamic batch. ``quantize`` (generator only): None; 'float16' (float16
    weights); 'dynamic' (int8 weights with activations quantized on the fly, for the layers
    that carry the per-frame work, see modules.quantize; keypoint, jacobian and sampling-grid
    math stay float32)."""
    functions = signature_functions(signatures, module)
    if module not in QUANTIZED_MODULES:
        quantize = None
    # Frozen first: converting resource variables leaves VAR_HANDLE ops in the model, which
    # neither XNNPACK nor the GPU delegates take. A frozen SavedModel (not a list of concrete
    # functions, which keeps only one) gives every signature the same constant buffers.
    frozen = {key: _frozen(fn) for key, fn in functions.items()}
    holder = tf.Module()
    for key, fn in frozen.items():
        setattr(holder, key, fn)
    with tempfile.TemporaryDirectory(prefix="fomm-frozen-") as tmp:
        tf.saved_model.save(holder, tmp, signatures=frozen)
        # The frozen graphs hold copies of every weight; the converter reads them from disk,
        # and freeing them first cuts the full-size generator's peak memory by a third.
        keys = list(frozen)
        del frozen, holder
        gc.collect()

        def convert(optimize):
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=keys)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            if optimize:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if optimize == "float16":
                converter.target_spec.supported_types = [tf.float16]
            return converter.convert()

        flatbuffer = convert(quantize)
        if quantize == "dynamic":
            flatbuffer = keep_int8_only(flatbuffer, convert(None))
    custom = [name for name in tflite_ops(flatbuffer) if not name.isupper()]
    if custom:
        raise ExportError(f"{module} converted with non-builtin ops {custom}")
    return flatbuffer


def _frozen(function):
    """``function`` with its variables turned into constants, same input and output names
    (freezing alone flattens the outputs to output_0, output_1, ...)."""
    concrete = function.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    names = list(inspect.signature(function.python_function).parameters)
    specs = dict(zip(names, function.input_signature))

    def call(inputs):
        flat = frozen(*[inputs[name] for name in names])
        return tf.nest.pack_sequence_as(concrete.structured_outputs, flat)

    call.__name__ = function.__name__
    return named_function(call, specs).get_concrete_function()


def write_file(path, data):
    """Writes bytes or text to ``path`` through a temporary file beside it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.tmp-")
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        _usual_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def replacing(directory):
    """Yields a temporary folder beside ``directory`` that replaces it on success; on any
    failure or interruption the temporary folder goes and ``directory`` stays as it was."""
    directory = os.path.abspath(directory)
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(directory)}.tmp-")
    try:
        yield tmp
        _usual_permissions(tmp)
        old = None
        if os.path.exists(directory):
            old = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(directory)}.old-")
            os.rename(directory, os.path.join(old, "x"))
        os.rename(tmp, directory)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _usual_permissions(path):
    """tempfile makes private (0600/0700) paths; the final file or folder gets the umask's."""
    umask = os.umask(0)
    os.umask(umask)
    for root, dirs, files in os.walk(path) if os.path.isdir(path) else [(None, [], [path])]:
        for entry in ([root] if root else []) + [os.path.join(root, d) for d in dirs]:
            os.chmod(entry, 0o777 & ~umask)
        for entry in files:
            os.chmod(os.path.join(root, entry) if root else entry, 0o666 & ~umask)


def tflite_ops(flatbuffer):
    """Operator name -> count over all subgraphs of a TF Lite model (custom ops by their
    custom code, e.g. 'FlexConv2D')."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    counts = collections.Counter()
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            if builtin == schema.BuiltinOperator.CUSTOM:
                counts[code.customCode.decode()] += 1
            else:
                counts[names[builtin]] += 1
    return dict(sorted(counts.items()))


def ops_report(folder):
    """OPS.md for the TF Lite models in ``folder``: each model's signatures (names, shapes with
    -1 for the dynamic batch, dtypes) and the operators it contains, for choosing a delegate."""
    from ai_edge_litert.interpreter import Interpreter

    lines = ["# TF Lite models: signatures and operators", "",
             "Generated by build.py. Every operator is a TF Lite builtin (no Flex ops).", ""]
    for module in MODULES:
        path = os.path.join(folder, f"{module}.tflite")
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            flatbuffer = f.read()
        lines += [f"## {module}.tflite ({len(flatbuffer) / 2**20:.1f} MiB)", ""]
        interpreter = Interpreter(model_content=flatbuffer)
        for key in interpreter.get_signature_list():
            runner = interpreter.get_signature_runner(key)
            lines.append(f"Signature `{key}`:")
            for kind, details in (("input", runner.get_input_details()),
                                  ("output", runner.get_output_details())):
                for tensor, d in sorted(details.items()):
                    shape = [int(v) for v in d["shape_signature"]]
                    lines.append(f"- {kind} `{tensor}`: {d['dtype'].__name__} {shape}")
            lines.append("")
        lines += ["| operator | count |", "|---|---|"]
        lines += [f"| {op} | {count} |" for op, count in tflite_ops(flatbuffer).items()]
        lines.append("")
    return "\n".join(lines)
