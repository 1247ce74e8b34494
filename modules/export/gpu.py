"""Mobile GPU delegate readiness of a TF Lite model.

Two checks: LiteRT's own analyzer (``tf.lite.experimental.Analyzer.analyze(...,
gpu_compatibility=True)``), and the delegate's per-operator rules read from the model itself.
The second exists because the analyzer of the pip packages (TF 2.21) calls every model
"compatible", even one made of a GATHER_ND and a GATHER with 2-D indices, which the delegate
refuses. The rules below are those of LiteRT's ``tools/versioning/gpu_compatibility.cc``
(``CheckGpuDelegateCompatibility``) that can apply to FOMM's operators; an operator that is
not listed there at all runs on the CPU.
"""

import contextlib
import io

import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema

# Builtins the GPU delegate has a kernel for (gpu_compatibility.cc's switch).
GPU_OPS = frozenset(
    """ABS ADD ADD_N ATAN2 AVERAGE_POOL_2D BATCH_MATMUL CAST CEIL CONCATENATION CONV_2D COS
    CUMSUM DENSIFY DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU
    EMBEDDING_LOOKUP EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER
    GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGISTIC LSTM
    MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD PADV2 POW
    PRELU QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE
    RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX
    SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STRIDED_SLICE SUB SUM TANH TILE
    TRANSPOSE TRANSPOSE_CONV""".split()
)
_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_FLOAT_OR_INT32 = (schema.TensorType.FLOAT32, schema.TensorType.INT32)


def analyzer_verdict(flatbuffer):
    """The last lines of LiteRT's analyzer with gpu_compatibility=True (its verdict)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer, gpu_compatibility=True)
    lines = [line for line in out.getvalue().splitlines() if "GPU" in line]
    return " ".join(lines) or "(no GPU verdict printed)"


def gpu_problems(flatbuffer):
    """{(operator, reason): count} over every operator of every subgraph that the GPU
    delegate would leave to the CPU, plus ('inputs', ...) when an input has a dynamic
    dimension (the delegate needs static shapes)."""
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    problems = {}
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for i in range(graph.InputsLength()):
            tensor = graph.Tensors(graph.Inputs(i))
            if tensor.ShapeSignatureLength() and (tensor.ShapeSignatureAsNumpy() < 0).any():
                key = ("(inputs)", "dynamic shape; the delegate needs static shapes")
                problems[key] = problems.get(key, 0) + 1
                break
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            code = model.OperatorCodes(op.OpcodeIndex())
            name = _NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            reason = _reason(model, graph, op, name)
            if reason:
                problems[name, reason] = problems.get((name, reason), 0) + 1
    return dict(sorted(problems.items()))


def _reason(model, graph, op, name):
    if name not in GPU_OPS:
        return "no GPU kernel"
    inputs = [graph.Tensors(i) if i >= 0 else None for i in op.InputsAsNumpy()]
    rank = len(inputs[0].ShapeAsNumpy()) if inputs[0] is not None else 0
    if name == "GATHER" and len(inputs[1].ShapeAsNumpy()) != 1:
        return "indices of rank > 1 (only 1-D indices)"
    if name in ("SLICE", "STRIDED_SLICE") and rank not in (3, 4):
        return f"rank-{rank} input (only 3-D or 4-D)"
    if name == "STRIDED_SLICE":
        options = schema.StridedSliceOptions()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        if options.ShrinkAxisMask() or options.EllipsisMask() or options.NewAxisMask():
            return "shrink/ellipsis/new-axis mask"
    if name in ("PAD", "PADV2", "MIRROR_PAD") and rank not in (3, 4):
        return f"rank-{rank} input (only 3-D or 4-D)"
    if name == "CAST":
        source, target = inputs[0].Type(), graph.Tensors(op.Outputs(0)).Type()
        floats = (schema.TensorType.FLOAT32, schema.TensorType.FLOAT16)
        bool_ = schema.TensorType.BOOL
        if not (
            (source == bool_ and target in floats)
            or (source in floats and target == bool_)
            or (source in _FLOAT_OR_INT32 and target in _FLOAT_OR_INT32)
        ):
            return "this pair of types"
    if name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"):
        axes = inputs[1]
        if not (axes.Buffer() and model.Buffers(axes.Buffer()).DataLength()):
            return "axes not constant"
    return None


def gpu_section(flatbuffer):
    """The OPS.md lines on the GPU delegate for one model."""
    lines = [f"GPU delegate, LiteRT analyzer: {analyzer_verdict(flatbuffer)}", ""]
    problems = gpu_problems(flatbuffer)
    if not problems:
        lines += ["GPU delegate rules: every operator can run on the GPU delegate.", ""]
        return lines
    lines += [
        "GPU delegate rules (gpu_compatibility.cc): these stay on the CPU",
        "",
        "| operator | why | count |",
        "|---|---|---|",
    ]
    lines += [f"| {op} | {why} | {n} |" for (op, why), n in problems.items()]
    return lines + [""]
