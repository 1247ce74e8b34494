"""SavedModel export: one folder per module with the ``load_model`` API's signatures."""

import inspect
import json
import os

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from modules.atomic import replacing
from modules.export.contract import MODULES, SAVED_MODEL_FORMS
from modules.signatures import named_function


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
        record = os.path.join(tmp, SAVED_MODEL_FORMS)
        os.makedirs(os.path.dirname(record), exist_ok=True)
        with open(record, "w") as f:
            json.dump({"fast_convolutions": list(signatures.fast)}, f)


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
