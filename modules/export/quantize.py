"""Selective dynamic-range quantization of a TF Lite model.

The TF Lite converter's dynamic-range mode stores int8 weights for every convolution and runs
them with activations quantized on the fly. For FOMM that costs most where it buys nothing:
the source encoder runs once per video, and the dense motion network (whose masks and
sampling grid move every pixel) is a small share of the per-frame work but amplifies weight
rounding into visible geometry errors. So the converter's int8 weights are kept only for the
layers that carry the per-frame work (the generator's bottleneck and up blocks) except the
first bottleneck convolution; every other weight goes back to the float32 values of a plain
conversion of the same graph.
"""

import re

from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from ..errors import ExportError

# Weight tensors are named after the Keras layer path, under a scope for signatures that call
# the whole model: 'bottleneck.r0_1/bottleneck.r0.conv1_1/Conv2D', 'generator_1/up_blocks.0_1/...'.
QUANTIZED_LAYERS = r"(^|/)(bottleneck|up_blocks)\."
# ...except these, which stay float32. The first bottleneck convolution's rounding error is
# carried through every later block: kept in float32 it lifts the benchmark model's PSNR
# against float32 from 34.9 to 35.9 dB for 7-13% more time per frame (each later convolution
# costs at most 0.8 dB, most of them under 0.2; docs/precision.md).
FLOAT32_LAYERS = r"(^|/)bottleneck\.r0\.conv1(_\d+)?/"


def _read(flatbuffer):
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))


def _float_weights(tensor, float_data):
    """The float32 data of the int8 ``tensor``: the float32 tensor of the same name and shape.
    The quantizer sometimes swaps the names of a kernel and its bias ('final_1/Conv2D' and
    'final_1/Conv2D1'), so the names one digit apart are tried too."""
    name, shape = tensor.name, list(tensor.shape)
    names = (name, name + b"1", name[:-1] if name.endswith(b"1") else name)
    found = [data for n in names for s, data in float_data.get(n, ()) if s == shape]
    if not found:
        raise ExportError(f"TF Lite quantization: no float32 weights for '{name.decode()}'")
    return found[0]


def keep_int8_only(dynamic, float32, pattern=QUANTIZED_LAYERS, exclude=FLOAT32_LAYERS):
    """``dynamic`` (a dynamic-range flatbuffer) with the int8 weights whose tensor name does
    not match ``pattern``, or matches ``exclude``, replaced by the float32 weights of
    ``float32`` (the same graph converted without quantization). Returns the new flatbuffer."""
    model, reference = _read(dynamic), _read(float32)
    float_data = {}
    for subgraph in reference.subgraphs:
        for tensor in subgraph.tensors:
            data = reference.buffers[tensor.buffer].data if tensor.buffer else None
            if data is not None and len(data):
                float_data.setdefault(tensor.name, []).append((list(tensor.shape), data))
    int8 = [
        tensor
        for subgraph in model.subgraphs
        for tensor in subgraph.tensors
        if tensor.type == schema.TensorType.INT8 and tensor.buffer
    ]
    # Signatures share weight buffers under different tensor names: a buffer stays int8 when
    # any of its names matches ``pattern`` and none matches ``exclude``.
    keep = {t.buffer for t in int8 if re.search(pattern, t.name.decode())}
    keep -= {t.buffer for t in int8 if exclude and re.search(exclude, t.name.decode())}
    for tensor in int8:
        if tensor.buffer in keep:
            continue
        model.buffers[tensor.buffer].data = _float_weights(tensor, float_data)
        tensor.type = schema.TensorType.FLOAT32
        tensor.quantization = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
