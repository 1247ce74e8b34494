"""ONNX export with tf2onnx: one .onnx per signature.

``kp_detector.onnx``, ``process_kp.onnx`` and ``generator.onnx`` are the serving_default
signatures; the generator's two halves come as ``generator_encode_source.onnx`` and
``generator_animate_encoded.onnx`` (ONNX has no multi-signature models). Inputs and outputs
keep the signature names, and every batch dimension stays dynamic.
"""

import contextlib
import gc
import logging
import os

from .. import extras
from ..errors import ExportError
from .contract import onnx_path, signature_stems
from .savedmodel import frozen_function, signature_functions

# Opset 17 is what onnxruntime 1.32, onnxruntime-web and onnxruntime-node all run; the
# gather inside grid_sample converts to GatherND there.
OPSET = 17
# The feature that a missing tf2onnx stops, as its error names it.
WHAT = "ONNX export (build.py --onnx, --web)"
# tf2onnx's environment switch for rolling back failing optimizer passes (tf2onnx.constants).
CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"


def convert_onnx(signatures, module, signature_key="serving_default"):
    """The serialized ONNX model (bytes) of one signature of ``module``: the signature's input
    and output names, a dynamic batch, weights as initializers."""
    extras.require("tf2onnx", "onnx", WHAT, error=ExportError)
    # Frozen first: tf2onnx turns captured tensors (the anti-alias kernels) into inputs.
    function = frozen_function(signature_functions(signatures, module)[signature_key])
    return convert_function(function, f"{module} ({signature_key})")


def convert_function(function, what):
    """The serialized ONNX model (bytes) of a tf.function with an input signature; ``what``
    names it in the error."""
    tf2onnx = extras.require("tf2onnx", "onnx", WHAT, error=ExportError)
    # tf2onnx reports every graph rewrite at INFO level.
    previous = logging.getLogger("tf2onnx").level
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    # By default tf2onnx deep-copies the whole graph before each of its optimizer passes (to
    # roll a failing pass back), and the copies, held in reference cycles, pile up until the
    # garbage collector runs: the full-size generator's conversion peaks at 11 GB with them,
    # 7 GB without. Without the copies a failing pass fails the conversion (one line, below).
    catch_errors = os.environ.get(CATCH_ERRORS)
    os.environ[CATCH_ERRORS] = "FALSE"
    try:
        with _fresh_node_protos():
            proto, _ = tf2onnx.convert.from_function(
                function, input_signature=function.input_signature, opset=OPSET
            )
    except Exception as error:  # the converter raises many kinds
        raise ExportError(
            f"tf2onnx could not convert {what}: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}; "
            "check that tf2onnx==1.17.0 is installed (bash install.sh)"
        ) from None
    finally:
        logging.getLogger("tf2onnx").setLevel(previous)
        if catch_errors is None:
            os.environ.pop(CATCH_ERRORS, None)
        else:
            os.environ[CATCH_ERRORS] = catch_errors
        gc.collect()  # tf2onnx's graphs are reference cycles: the next model's peak adds less
    return proto.SerializeToString()


@contextlib.contextmanager
def _fresh_node_protos():
    """tf2onnx rewrites every node's NodeProto after each optimizer pass (graph.Node.
    update_proto: the attributes deleted, then extended anew). With protobuf's upb backend a
    message's replaced fields stay in its arena until the message itself is freed, so each
    pass left a copy of every weight behind: 24 passes, 4 GB for the full-size generator.
    Here each update writes into a fresh NodeProto and the old one is freed whole; the
    converted models compute the same outputs."""
    from tf2onnx.graph import Node

    from onnx import NodeProto

    original = Node.update_proto

    def update_proto(self, external_tensor_storage=None):
        del self._op.attribute[:]  # not copied into the fresh message
        fresh = NodeProto()
        fresh.CopyFrom(self._op)
        self._op = fresh
        return original(self, external_tensor_storage)

    Node.update_proto = update_proto
    try:
        yield
    finally:
        Node.update_proto = original


def onnx_files(signatures, module, folder):
    """(path, bytes) of every ONNX file of ``module`` in ``folder``."""
    return [
        (onnx_path(folder, stem), convert_onnx(signatures, module, key))
        for key, stem in signature_stems(module).items()
    ]
