"""A TF Lite file's signatures on LiteRT's ``CompiledModel`` (CPU, XNNPACK), called with numpy.

``CompiledModel`` rather than the older ``Interpreter``: it takes XNNPACK's weight cache
(``CpuOptions.xnnpack_weight_cache_path``). In memory (``IN_MEMORY``) the cache packs a
weight that several signatures share once instead of once per signature; in a file
(``modules.app.weight_cache``) a later run maps the packed weights instead of packing them
again (docs/speed.md). The frames are the Interpreter's, bit for bit.
"""

import functools
import mmap
import os

import numpy as np

from .cli import quiet

IN_MEMORY = ":memory"  # XNNPACK's name for a cache that lives as long as the model


@functools.cache
def environment():
    """LiteRT's environment, without the vendor plugins it would otherwise look for (NPU
    compilers and dispatchers): the models run on the CPU only, the same on every machine."""
    import ai_edge_litert
    from ai_edge_litert.environment import Environment
    from ai_edge_litert.tensor_buffer import TensorBuffer

    none = os.path.join(os.path.dirname(ai_edge_litert.__file__), "tflite")  # holds no plugin
    with quiet():  # its C++ side lists every accelerator it registers
        created = Environment.create(compiler_plugin_path=none, dispatch_library_path=none)
        # The first write to any tensor buffer sets up LiteRT's own default environment,
        # with the same list: here, rather than in the middle of the first frame's progress.
        data = np.zeros(16, np.float32)
        TensorBuffer.create_from_host_memory(data).write(data)
    return created


class LiteModel:
    """One .tflite file: ``runners`` (signature key -> ``SignatureRunner``). Raises what
    LiteRT raises for a file it cannot load. ``weight_cache``: ``IN_MEMORY`` or the file of
    packed weights to map, or to write when it does not exist (``modules.app.weight_cache``)."""

    def __init__(self, path, num_threads, weight_cache=IN_MEMORY):
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        from ai_edge_litert.options import Options

        # CompiledModel does not verify the flatbuffer: a damaged file crashes the process.
        # The Interpreter's builder verifies it and checks its graph, in a few milliseconds
        # and without packing a weight (no delegate).
        Interpreter(
            model_path=path,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        options = Options(
            hardware_accelerators=HardwareAccelerator.CPU,
            cpu_options=CpuOptions(num_threads=num_threads, xnnpack_weight_cache_path=weight_cache),
        )
        self.path = path
        with quiet():
            self.model = CompiledModel.from_file(path, options=options, environment=environment())
        self.shapes = self.read(input_shape_signatures)
        self.runners = {key: SignatureRunner(self, key) for key in self.shapes}

    def read(self, function):
        """``function(flatbuffer)`` on the file mapped, not read: the generator is 150-200 MB
        and only a few tables of it are needed (reading it took 0.13 s of each run). What
        ``function`` returns must not point into the flatbuffer."""
        with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return function(view)

    def metadata(self, name):
        """The JSON value of the file's metadata ``name`` (``modules.export.metadata``)."""
        from ..export.metadata import read_metadata

        return self.read(lambda flatbuffer: read_metadata(flatbuffer, name))


def input_shape_signatures(flatbuffer):
    """``{signature key: {input name: shape with -1 for a dynamic size}}`` of a TF Lite
    flatbuffer (``CompiledModel`` reports only the current shapes)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    shapes = {}
    for i in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(i)
        graph = model.Subgraphs(signature.SubgraphIndex())
        inputs = {}
        for j in range(signature.InputsLength()):
            tensor = graph.Tensors(signature.Inputs(j).TensorIndex())
            if tensor.ShapeSignatureLength():
                dims = [tensor.ShapeSignature(k) for k in range(tensor.ShapeSignatureLength())]
            else:
                dims = [tensor.Shape(k) for k in range(tensor.ShapeLength())]
            inputs[signature.Inputs(j).Name().decode()] = np.array(dims, np.int32)
        shapes[signature.SignatureKey().decode()] = inputs
    return shapes


class SignatureRunner:
    """One signature: called with float32 numpy arrays by input name, returns ``{output name:
    array}``. Inputs of a new shape resize the signature (its dynamic sizes) and its buffers;
    ``get_input_details`` gives each input's ``shape_signature`` as LiteRT's Interpreter does."""

    def __init__(self, lite_model, key):
        self.lite_model, self.key = lite_model, key
        model = lite_model.model
        self.index = model.get_signature_index(key)
        names = model.get_signature_list()[key]
        self.inputs, self.outputs = names["inputs"], names["outputs"]
        self.shapes = None  # of the inputs the buffers were made for

    def get_input_details(self):
        return {
            name: {"shape_signature": shape}
            for name, shape in self.lite_model.shapes[self.key].items()
        }

    def __call__(self, **inputs):
        if set(inputs) != set(self.inputs):
            raise ValueError(f"signature '{self.key}' takes {self.inputs}, got {list(inputs)}")
        arrays = [np.asarray(inputs[name], np.float32, order="C") for name in self.inputs]
        shapes = [array.shape for array in arrays]
        model = self.lite_model.model
        if shapes != self.shapes:
            wanted = self.lite_model.shapes[self.key]
            for name, shape in zip(self.inputs, shapes):
                if not fits(shape, wanted[name]):
                    raise ValueError(f"input '{name}' has shape {shape}; expected {wanted[name]}")
            current = model.get_input_tensor_details(self.key)
            for i, (name, shape) in enumerate(zip(self.inputs, shapes)):
                if list(shape) != list(current[name]["shape"]):  # LiteRT refuses scalars here
                    model.resize_input_tensor(i, shape, self.index)
            self.input_buffers = model.create_input_buffers(self.index)
            self.output_buffers = model.create_output_buffers(self.index)
            details = model.get_output_tensor_details(self.key)
            self.output_shapes = [tuple(details[name]["shape"]) for name in self.outputs]
            self.shapes = shapes
        for buffer, array in zip(self.input_buffers, arrays):
            buffer.write(array)
        model.run_by_index(self.index, self.input_buffers, self.output_buffers)
        return {
            name: buffer.read(int(np.prod(shape)), np.float32).reshape(shape)
            for name, buffer, shape in zip(self.outputs, self.output_buffers, self.output_shapes)
        }


def fits(shape, signature):
    """Whether ``shape`` is one the shape signature (-1: any size) allows."""
    return len(shape) == len(signature) and all(s in (-1, n) for s, n in zip(signature, shape))
