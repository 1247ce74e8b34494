"""Named metadata entries of TF Lite flatbuffers (``Model.metadata``): how a mobile build
records what it fixed at build time, e.g. the flags of a process_kp built with --hardcode."""

import json

# LiteRT's copy of the schema: reading needs no TensorFlow (testlite.py never imports it).
from ai_edge_litert import schema_py_generated as schema


def add_metadata(flatbuffer, name, value):
    """``flatbuffer`` with the JSON of ``value`` stored as metadata ``name``."""
    from tensorflow.lite.tools import flatbuffer_utils  # build time: TensorFlow is loaded

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    buffer = schema.BufferT()
    buffer.data = list(json.dumps(value, sort_keys=True).encode())
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() != name] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(flatbuffer, name):
    """The JSON value of metadata ``name`` in ``flatbuffer`` (bytes or a read-only mmap), or
    None. Reads only the entry, not the whole model."""
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == name:
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return None
