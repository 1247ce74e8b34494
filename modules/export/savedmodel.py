"""SavedModel export: one folder per module with the ``load_model`` API's signatures."""

import tensorflow as tf

from modules.atomic import replacing
from modules.export.contract import MODULES


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
