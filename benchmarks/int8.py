"""The int8 choices for the generator's per-frame layers, on bench.py's model (the full-size
vox architecture with random weights, batch norm calibrated on the example frames): which
layers `build.py --quantize dynamic` keeps in int8, whether more of the per-frame work (the
dense motion network) can join them, and static int8 (activation ranges calibrated on the
example frames), which is measured here and not offered.

    python benchmarks/int8.py [--workdir DIR] [--frames 32] [--repeats 9]

Prints the PSNR of each choice against the float32 TF Lite frames (bench.py's measure) and,
for TIMED, the s/frame at batch 4 with every model loaded in this one process and called in
turn (best of --repeats), with the load average. README.md (Reduced precision) records it.
Takes about 9 minutes and 12 GB of RAM (most in the converter); the workdir can be
bench.py's (its weights.npz is reused).
"""

import argparse
import gc
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import psnr  # noqa: E402
from random_model import EXAMPLE_DRIVING, EXAMPLE_SOURCE, workdir_model  # noqa: E402

from modules.app.cli import import_tensorflow, quiet  # noqa: E402
from modules.export.quantize import FLOAT32_LAYERS, QUANTIZED_LAYERS  # noqa: E402


def layers(*names):
    """A keep_int8_only ``exclude`` pattern for these Keras layers."""
    return "|".join(rf"(^|/){re.escape(name)}(_\d+)?/" for name in names)


R0, R1 = "bottleneck.r0.conv1", "bottleneck.r1.conv1"
# --quantize dynamic, int8 in the bottleneck and up blocks except: name -> FLOAT32 pattern
DYNAMIC = {
    "dynamic, all int8 (the previous build)": None,
    f"dynamic, {R0} float32 (today's build)": FLOAT32_LAYERS,
    **{
        f"dynamic, {name} float32": layers(name)
        for name in [f"bottleneck.r{i}.conv{j}" for i in range(6) for j in (1, 2)][1:]
        + ["up_blocks.0", "up_blocks.1"]
    },
    "dynamic, bottleneck.r0 float32": layers(R0, "bottleneck.r0.conv2"),
    f"dynamic, {R0} and {R1} float32": layers(R0, R1),
    f"dynamic, {R0} and up_blocks.0 float32": layers(R0, "up_blocks.0"),
}
# today's build with more of the per-frame work in int8: name -> the layers added to it
HOURGLASS = r"(^|/)dense_motion_network\.hourglass\."
DENSE_MOTION = {
    "dynamic, + dense motion hourglass": HOURGLASS,
    "dynamic, + its encoder": HOURGLASS + r"encoder\.",
    "dynamic, + its decoder": HOURGLASS + r"decoder\.",
    "dynamic, + its four blocks at 2x2 to 8x8": (
        HOURGLASS + r"(encoder\.down_blocks\.[34]|decoder\.up_blocks\.[01])\."
    ),
    "dynamic, + the whole dense motion network": r"(^|/)dense_motion_network\.",
}
# static int8: name -> which ops (by their first output's name) get int8 activations
REGION = r"(^|/)(bottleneck|up_blocks)\."
STATIC = {
    "static, bottleneck and up blocks": lambda op: re.search(REGION, op),
    "static, their convolutions only": lambda op: re.search(REGION, op) and "Conv2D" in op,
    "static, bottleneck and up blocks except bottleneck.r0": lambda op: (
        re.search(REGION, op) and not op.startswith("bottleneck.r0_")
    ),
}
TIMED = [
    "float32",
    *list(DYNAMIC)[:2],
    "dynamic, bottleneck.r0 float32",
    *DENSE_MOTION,
    *list(STATIC)[:2],
]


def flatbuffers(workdir):
    """float32 and all-int8 dynamic-range generators, float32 kp_detector and process_kp,
    and the float32 animate_encoded alone (cached in ``workdir``/int8)."""
    from modules.atomic import write_file
    from modules.export.tflite import convert_tflite, converted, frozen_saved_model

    folder = os.path.join(workdir, "int8")
    paths = {
        name: os.path.join(folder, f"{name}.tflite")
        for name in (
            "generator",
            "generator-dynamic",
            "animate_encoded",
            "kp_detector",
            "process_kp",
        )
    }
    if not all(os.path.isfile(p) for p in paths.values()):
        model = workdir_model(workdir)
        for module in ("kp_detector", "process_kp"):
            write_file(paths[module], convert_tflite(model.tflite_signatures, module))
        with frozen_saved_model(model.tflite_signatures, "generator") as (path, keys):
            del model
            gc.collect()
            write_file(paths["generator"], converted(path, keys))
            write_file(paths["generator-dynamic"], converted(path, keys, "dynamic"))
            write_file(paths["animate_encoded"], converted(path, ["animate_encoded"]))
    result = {}
    for name, path in paths.items():
        with open(path, "rb") as f:
            result[name] = f.read()
    return result


def folder_of(workdir, name):
    return os.path.join(workdir, "int8", re.sub(r"[^\w.]+", "-", name))


def model_folder(workdir, name, models, generator):
    """A TF Lite folder with this generator and the float32 kp_detector and process_kp."""
    from modules.atomic import write_file

    folder = folder_of(workdir, name)
    for module in ("kp_detector", "process_kp"):
        write_file(os.path.join(folder, f"{module}.tflite"), models[module])
    write_file(os.path.join(folder, "generator.tflite"), generator)
    return folder


def lite_models(folder, animate_encoded=None):
    """LiteModels (2 threads) of ``folder``; with ``animate_encoded`` (a one-signature
    flatbuffer), its per-frame signature runs that model instead, on the same runtime
    (testlite.py's ``CompiledModel``), from a file beside the others."""
    import hashlib

    from modules.app.litert import LiteModel
    from modules.app.sources import LiteModels, _LiteRunner
    from modules.atomic import write_file

    models = LiteModels(folder, "benchmarks/int8.py", num_threads=2)
    if animate_encoded is not None:
        digest = hashlib.sha256(animate_encoded).hexdigest()[:16]
        path = os.path.join(folder, f"animate_encoded-{digest}.tflite")
        if not os.path.isfile(path):
            write_file(path, animate_encoded)
        runner = LiteModel(path, num_threads=2).runners["animate_encoded"]
        models._functions["animate_encoded"] = _LiteRunner(runner, {}, path)
    return models


def write_frames(models, out, frames, record=None):
    """The example animated with --relative --adapt_scale into ``out`` (PNG frames);
    ``record``, a list, gets every animate_encoded input at batch 1."""
    from modules.app.pipeline import Animation, Settings

    if record is not None:
        function = models._functions["animate_encoded"]

        def recording(**inputs):
            count = len(inputs["kp_driving_value"])
            for i in range(count):
                record.append(
                    {k: v[i : i + 1] if len(v) == count else v for k, v in inputs.items()}
                )
            return function(**inputs)

        models._functions["animate_encoded"] = recording
    settings = Settings(relative=True, adapt_scale=True, frames=frames)
    Animation(models, settings).run(EXAMPLE_SOURCE, EXAMPLE_DRIVING, out + os.sep)


def calibrated(flatbuffer, samples):
    """``flatbuffer`` (float32, one signature) with every float activation's min/max over
    ``samples`` in its quantization parameters, as the converter's calibrator writes them.
    Run here on LiteRT's builtin kernels with every tensor kept: the calibrator runs
    TensorFlow's bundled kernels, whose STRIDED_SLICE rejects the 6-D jacobian tensors."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tensorflow.lite.python import schema_py_generated as schema

    interpreter = Interpreter(
        model_content=flatbuffer,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    runner = interpreter.get_signature_runner("animate_encoded")
    low, high = {}, {}
    for sample in samples:
        runner(**sample)
        for detail in interpreter.get_tensor_details():
            if detail["dtype"] != np.float32:
                continue
            try:
                value = interpreter.get_tensor(detail["index"])
            except ValueError:  # a tensor with no data
                continue
            if value.size:
                i = detail["index"]
                low[i] = min(low.get(i, np.inf), float(value.min()))
                high[i] = max(high.get(i, -np.inf), float(value.max()))
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    for i, tensor in enumerate(model.subgraphs[0].tensors):
        data = model.buffers[tensor.buffer].data if tensor.buffer else None
        if i in low and (data is None or not len(data)):
            tensor.quantization = schema.QuantizationParametersT()
            tensor.quantization.min, tensor.quantization.max = [low[i]], [high[i]]
    return model


def static_int8(calibrated_model, chosen):
    """The calibrated model with int8 activations for the ops whose first output name
    ``chosen`` accepts; every other op stays float32."""
    import copy

    from tensorflow.lite.python import convert
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = copy.deepcopy(calibrated_model)
    graph = model.subgraphs[0]
    deny, keep = [], set()
    for op in graph.operators:
        outputs = [graph.tensors[i].name.decode() for i in op.outputs]
        if chosen(outputs[0]):
            keep.update([*op.inputs, *op.outputs])
        else:
            deny += outputs
    # Only the chosen ops' tensors keep their ranges: the quantizer ignores the deny list for
    # ops that take their input's scale (UNPACK) wherever it finds ranges.
    for i, tensor in enumerate(graph.tensors):
        if i not in keep and tensor.type == schema.TensorType.FLOAT32:
            tensor.quantization = None
    flatbuffer = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    return convert.mlir_quantize(flatbuffer, disable_per_channel=False, denylisted_nodes=deny)


def time_interleaved(models, repeats):
    """Best s/frame at batch 4 of each model, all called in turn ``repeats`` times."""
    import numpy as np

    from modules.app.pipeline import Animation, Settings

    rng = np.random.default_rng(0)
    calls = {}
    for name, m in models.items():
        source = rng.random((1, *m.frame_shape, 3), dtype=np.float32)
        driving = rng.random((4, *m.frame_shape, 3), dtype=np.float32)
        arguments = (driving, m.encode_source(source_image=source), m.kp_detector(image=source))
        animation = Animation(m, Settings(relative=True, adapt_scale=True))
        animation.animate_batch(*arguments)  # first call plans
        calls[name] = (animation, arguments)
    best = dict.fromkeys(models, float("inf"))
    for _ in range(repeats):
        for name, (animation, arguments) in calls.items():
            start = time.perf_counter()
            animation.animate_batch(*arguments)
            best[name] = min(best[name], (time.perf_counter() - start) / 4)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", help="keep the models here (default: a temporary folder); bench.py's works"
    )
    parser.add_argument("--frames", type=int, default=32, help="example frames for PSNR")
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per model")
    args = parser.parse_args()
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="fomm-int8-")
    import_tensorflow()
    from modules.export.quantize import keep_int8_only

    with quiet():
        models = flatbuffers(args.workdir)
    folders = {"float32": model_folder(args.workdir, "float32", models, models["generator"])}
    choices = {name: (QUANTIZED_LAYERS, exclude) for name, exclude in DYNAMIC.items()}
    for name, more in DENSE_MOTION.items():
        choices[name] = (f"{QUANTIZED_LAYERS}|{more}", FLOAT32_LAYERS)
    for name, (pattern, exclude) in choices.items():
        generator = keep_int8_only(
            models["generator-dynamic"], models["generator"], pattern, exclude
        )
        folders[name] = model_folder(args.workdir, name, models, generator)
    frames = {name: os.path.join(folder_of(args.workdir, name), "frames") for name in folders}
    frames.update({name: os.path.join(folder_of(args.workdir, name), "frames") for name in STATIC})
    samples = []
    with quiet():
        write_frames(lite_models(folders["float32"]), frames["float32"], args.frames, samples)
        calibration = calibrated(models["animate_encoded"], samples)
    static = {name: static_int8(calibration, chosen) for name, chosen in STATIC.items()}
    del calibration, samples
    gc.collect()
    quality = {}
    for name in [*DYNAMIC, *DENSE_MOTION, *STATIC]:
        with quiet():
            model = lite_models(folders.get(name, folders["float32"]), static.get(name))
            write_frames(model, frames[name], args.frames)
        quality[name] = psnr(frames[name], frames["float32"])
        print(f"{name}: {quality[name]:.2f} dB", flush=True)
        del model
    load = os.getloadavg()
    with quiet():
        timed = {n: lite_models(folders.get(n, folders["float32"]), static.get(n)) for n in TIMED}
        speed = time_interleaved(timed, args.repeats)
    load = (load, os.getloadavg())
    print(f"\nload average (1, 5, 15 min) before / after timing: {load[0]} / {load[1]}")
    print(f"\n| model | PSNR vs float32, {args.frames} frames | s/frame batch 4 |\n|---|---|---|")
    for name in ["float32", *DYNAMIC, *DENSE_MOTION, *STATIC]:
        seconds = f"{speed[name]:.3f}" if name in speed else ""
        print(f"| {name} | {f'{quality[name]:.2f} dB' if name in quality else ''} | {seconds} |")


if __name__ == "__main__":
    main()
