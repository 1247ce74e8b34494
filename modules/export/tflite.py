"""TF Lite export: one .tflite per module, builtin ops only, and the operator report.

Each module's ``serving_default`` signature has the ``load_model`` API's names; the
generator also carries ``encode_source`` and ``animate_encoded``.
"""

import collections
import gc
import inspect
import os
import tempfile

import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from modules.errors import ExportError
from modules.export.contract import (
    HARDCODED_FLAGS_METADATA,
    MODULES,
    QUANTIZED_MODULES,
    tflite_path,
)
from modules.export.gpu import gpu_section
from modules.export.metadata import add_metadata, read_metadata
from modules.export.quantize import keep_int8_only
from modules.export.savedmodel import signature_functions
from modules.signatures import named_function


def convert_tflite(signatures, module, quantize=None):
    """The TF Lite flatbuffer of ``module``: builtin ops only, weights as constants shared by
    all signatures, dynamic batch. ``quantize`` (generator only): None; 'float16' (float16
    weights); 'dynamic' (int8 weights with activations quantized on the fly, for the layers
    that carry the per-frame work, see modules.export.quantize; keypoint, jacobian and sampling-grid
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
    if module == "process_kp" and signatures.hardcode:
        flatbuffer = add_metadata(flatbuffer, HARDCODED_FLAGS_METADATA, signatures.hardcode)
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
    -1 for the dynamic batch, dtypes), the operators it contains and what the mobile GPU
    delegate would leave to the CPU, for choosing a delegate."""
    from ai_edge_litert.interpreter import Interpreter

    lines = [
        "# TF Lite models: signatures and operators",
        "",
        "Generated by build.py. Every operator is a TF Lite builtin (no Flex ops).",
        "",
    ]
    for module in MODULES:
        path = tflite_path(folder, module)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            flatbuffer = f.read()
        lines += [f"## {module}.tflite ({len(flatbuffer) / 2**20:.1f} MiB)", ""]
        interpreter = Interpreter(model_content=flatbuffer)
        for key in interpreter.get_signature_list():
            runner = interpreter.get_signature_runner(key)
            lines.append(f"Signature `{key}`:")
            for kind, details in (
                ("input", runner.get_input_details()),
                ("output", runner.get_output_details()),
            ):
                for tensor, d in sorted(details.items()):
                    shape = [int(v) for v in d["shape_signature"]]
                    lines.append(f"- {kind} `{tensor}`: {d['dtype'].__name__} {shape}")
            lines.append("")
        hardcoded = read_metadata(flatbuffer, HARDCODED_FLAGS_METADATA)
        if hardcoded:
            lines += [f"Flags fixed at build time (`{HARDCODED_FLAGS_METADATA}`): {hardcoded}", ""]
        lines += ["| operator | count |", "|---|---|"]
        lines += [f"| {op} | {count} |" for op, count in tflite_ops(flatbuffer).items()]
        lines.append("")
        lines += gpu_section(flatbuffer)
    return "\n".join(lines)
