"""SavedModel export: one folder per module with the ``load_model`` API's signatures."""

import inspect
import json
import os

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from ..atomic import replacing
from ..signatures import named_function
from .contract import MODULES, SAVED_MODEL_FORMS


def signature_functions(signatures, module):
    functions = signatures.functions()
    return {key: functions[name] for key, name in MODULES[module].items()}


def save_saved_model(signatures, module, directory):
    """Writes the SavedModel of ``module`` to ``directory`` (atomically replaced).

    Made for a fast load (test.py's start), with the same signatures and results: the root
    holds the model's variables, not the Keras layers around them (TensorFlow would restore
    each layer as an object nobody calls), and the generator's ``serving_default`` calls
    its ``encode_source`` and ``animate_encoded`` instead of holding a second copy of their
    graph. Together 0.3-0.5 s less to load the vox models (docs/speed.md)."""
    functions = signature_functions(signatures, module)
    if module == "generator":
        functions["serving_default"] = composed_generator(signatures)
    holder = tf.Module()
    model = {
        "kp_detector": signatures.kp_detector_model,
        "generator": signatures.generator_model,
    }.get(module)
    if model is not None:
        holder.model_variables = list(model.weights)
    concrete = {key: fn.get_concrete_function() for key, fn in functions.items()}
    for key, fn in concrete.items():
        setattr(holder, key, fn)
    with replacing(directory) as tmp:
        tf.saved_model.save(holder, tmp, signatures=concrete)
        record = os.path.join(tmp, SAVED_MODEL_FORMS)
        os.makedirs(os.path.dirname(record), exist_ok=True)
        with open(record, "w") as f:
            json.dump({"fast_convolutions": list(signatures.fast)}, f)


def composed_generator(signatures):
    """``signatures.generator`` as ``animate_encoded(encode_source(source_image), ...)``: the
    generator's call is ``decode(encode(...))``, so the results are the same, bit for bit.
    Only for dynamic batches (a static build tiles the source first; no SavedModel has one)."""
    if signatures.static_batch:
        raise ValueError("a static batch has no composed generator")
    specs = {spec.name: spec for spec in signatures.generator.input_signature}

    def _generator(inputs):
        encoded = signatures.encode_source(source_image=inputs.pop("source_image"))
        return signatures.animate_encoded(**encoded, **inputs)

    return named_function(_generator, specs)


def frozen_function(function):
    """``function`` (a tf.function) with its variables and captured tensors turned into
    constants, same input and output names (freezing alone flattens the outputs to output_0,
    output_1, ...)."""
    concrete = function.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    names = list(inspect.signature(function.python_function).parameters)
    specs = dict(zip(names, function.input_signature))

    def call(inputs):
        flat = frozen(*[inputs[name] for name in names])
        return tf.nest.pack_sequence_as(concrete.structured_outputs, flat)

    call.__name__ = function.__name__
    return named_function(call, specs)
