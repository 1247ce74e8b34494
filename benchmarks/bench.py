"""Speed, memory and size of run.py's Keras models, the SavedModels and the TF Lite models
(float32, float16, dynamic-range int8) on the full-size vox model. Needs no download.

    python benchmarks/bench.py [--frames 40] [--repeats 3]

The vox architecture (config/vox-256.yaml) gets random weights whose batch-norm statistics
are calibrated on the example frames, so activations have realistic ranges (as the tiny
fixtures' are); every target is then measured in a fresh process so that its peak RSS is its
own. Prints a markdown table; README.md (Speed) records it with the machine it came from.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from modules.app.cli import import_tensorflow, quiet  # noqa: E402
from modules.export.contract import QUANTIZATIONS, build_name  # noqa: E402

CONFIG = os.path.join(ROOT, "config", "vox-256.yaml")
EXAMPLE_SOURCE = os.path.join(ROOT, "example", "source.png")
EXAMPLE_DRIVING = os.path.join(ROOT, "example", "driving.mp4")
# tflite, tflite-float16, tflite-dynamic: build.py's folder names of the TF Lite builds
TARGETS = ("keras", "savedmodel", *(build_name("tflite", q) for q in (None, *QUANTIZATIONS)))
# The original PyTorch on the same 2-core machine (issue #5, re-measured: README, Speed):
# generator 0.69 s/frame + keypoint detector 0.028 s/frame at batch 1.
ORIGINAL_SECONDS_PER_FRAME = 0.69 + 0.028


def random_model():
    """The vox Keras models with random weights and batch-norm statistics measured on the
    example frames (each layer's running mean/variance set from its own input, in order)."""
    import numpy as np

    from modules.app.images import read_image, resize_frame
    from modules.app.video import VideoReader
    from modules.convert.config import load_config
    from modules.convert.model import Model, build_models
    from modules.convert.weights import load_state_dict, random_state_dict
    from modules.layers import BatchNorm2d

    config = load_config(CONFIG)
    kp_detector, generator = build_models(config)
    load_state_dict(kp_detector, random_state_dict(kp_detector, 0), "kp_detector")
    load_state_dict(generator, random_state_dict(generator, 1), "generator")

    # Enough frames that even the 2x2 bottom of the hourglasses gets a usable variance
    # (a handful of samples per channel gives near-zero variances that blow activations up).
    with VideoReader(EXAMPLE_DRIVING) as reader:
        frames = [resize_frame(f, config.frame_shape) for i, f in enumerate(reader) if i % 6 == 0]
    source = read_image(EXAMPLE_SOURCE, config.frame_shape)
    images = np.stack([source] + frames).astype(np.float32)

    original_call = BatchNorm2d.call

    def calibrating_call(layer, x):
        mean, variance = (v.numpy() for v in __import__("tensorflow").nn.moments(x, [0, 1, 2]))
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(variance)
        return original_call(layer, x)

    BatchNorm2d.call = calibrating_call
    try:
        kp = kp_detector(images)
        pairs = len(frames)
        generator(
            np.repeat(images[:1], pairs, axis=0),
            kp_driving={k: v[1:] for k, v in kp.items()},
            kp_source={k: np.repeat(v[:1], pairs, axis=0) for k, v in kp.items()},
        )
    finally:
        BatchNorm2d.call = original_call
    return Model(config, kp_detector, generator)


def save_weights(model, path):
    """The random model's weights, so that every worker runs the same model without
    calibrating it again (which would inflate its peak memory)."""
    import numpy as np

    from modules.convert.weights import state_dict

    np.savez(
        path,
        **{f"kp_detector/{k}": v for k, v in state_dict(model.keras_kp_detector).items()},
        **{f"generator/{k}": v for k, v in state_dict(model.keras_generator).items()},
    )


def load_weights(path):
    """The Keras models of the vox config with the weights ``save_weights`` wrote."""
    import numpy as np

    from modules.convert.config import load_config
    from modules.convert.model import Model, build_models
    from modules.convert.weights import load_state_dict

    config = load_config(CONFIG)
    kp_detector, generator = build_models(config)
    with np.load(path) as data:
        for part, model in (("kp_detector", kp_detector), ("generator", generator)):
            load_state_dict(
                model,
                {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(part + "/")},
                part,
            )
    return Model(config, kp_detector, generator)


def build_exports(workdir):
    """The random model's weights, SavedModels and three TF Lite variants, in ``workdir``."""
    from modules.atomic import write_file
    from modules.export import savedmodel, tflite
    from modules.export.contract import MODULE_NAMES, tflite_dir, tflite_path

    model = random_model()
    save_weights(model, os.path.join(workdir, "weights.npz"))
    for module in MODULE_NAMES:
        savedmodel.save_saved_model(
            model.signatures, module, os.path.join(workdir, "saved", module)
        )
        for quantize in (None, *QUANTIZATIONS):
            folder = tflite_dir(workdir, "tflite", quantize)
            write_file(
                tflite_path(folder, module),
                tflite.convert_tflite(model.signatures, module, quantize),
            )
    return model


def load_target(target, workdir):
    from modules.app.sources import LiteModels, SavedModels

    if target == "keras":
        return load_weights(os.path.join(workdir, "weights.npz"))
    if target == "savedmodel":
        return SavedModels(os.path.join(workdir, "saved"), "benchmarks/bench.py")
    return LiteModels(os.path.join(workdir, target), "benchmarks/bench.py")


def gflop_per_frame(model):
    """GFLOP of one frame (batch 1) of the full generator, its per-frame part and the keypoint
    detector, counted by TensorFlow's profiler on the traced graphs."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    def count(function):
        specs = [
            tf.TensorSpec([1 if s.shape[0] is None else s.shape[0], *s.shape[1:]], s.dtype)
            for s in function.input_signature
        ]
        graph = tf.function(function.python_function).get_concrete_function(*specs).graph
        options = option_builder.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        return model_analyzer.profile(graph, options=options).total_float_ops / 1e9

    functions = model.signatures.functions()
    return {
        name: count(functions[name]) for name in ("generator", "animate_encoded", "kp_detector")
    }


def matmul_peak():
    """GFLOP/s of a large float32 matmul in TensorFlow (oneDNN): the machine's practical peak."""
    import tensorflow as tf

    a = tf.random.normal([2048, 2048])
    tf.matmul(a, a).numpy()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        tf.matmul(a, a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * 2048**3 / best / 1e9


def time_frames(models, batch, repeats):
    """Seconds per frame of kp_detector + process_kp + animate_encoded at ``batch``, as the
    pipeline calls them (relative motion, adapted scale)."""
    import numpy as np

    from modules.app.pipeline import Animation, Settings

    rng = np.random.default_rng(0)
    source = rng.random((1, *models.frame_shape, 3), dtype=np.float32)
    driving = rng.random((batch, *models.frame_shape, 3), dtype=np.float32)
    kp_source = models.kp_detector(image=source)
    encoded = models.encode_source(source_image=source)
    animation = Animation(models, Settings(relative=True, adapt_scale=True))
    animation.animate_batch(driving, encoded, kp_source)  # first call plans / traces
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        animation.animate_batch(driving, encoded, kp_source)
        best = min(best, time.perf_counter() - start)
    return best / batch


def worker(target, workdir, frames, repeats):
    """Measures one target in this process; prints one JSON line."""
    from modules.app.pipeline import Animation, Settings

    import_tensorflow()
    with quiet():
        models = load_target(target, workdir)
    result = {"target": target}
    for batch in (1, 4):
        result[f"s_per_frame_b{batch}"] = time_frames(models, batch, repeats)
    settings = Settings(relative=True, adapt_scale=True, frames=frames)
    start = time.perf_counter()
    count, _ = Animation(models, settings).run(
        EXAMPLE_SOURCE, EXAMPLE_DRIVING, os.path.join(workdir, f"{target}.mp4")
    )
    result["end_to_end_fps"] = count / (time.perf_counter() - start)
    result["peak_rss_mib"] = peak_rss_mib()
    if target.startswith("tflite"):  # lossless frames for the quantized models' PSNR
        out = os.path.join(workdir, f"{target}-frames") + os.sep
        Animation(models, settings).run(EXAMPLE_SOURCE, EXAMPLE_DRIVING, out)
        result["frames_dir"] = out
    print(json.dumps(result))


def peak_rss_mib():
    """This process's peak RSS. VmHWM, not getrusage: ru_maxrss survives exec, so a worker
    started by a large parent would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def size_mib(path):
    if os.path.isfile(path):
        return os.path.getsize(path) / 2**20
    return (
        sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
        / 2**20
    )


def psnr(folder, reference):
    import imageio.v2 as imageio
    import numpy as np

    names = sorted(os.listdir(reference))
    errors = [
        np.mean(
            (
                imageio.imread(os.path.join(folder, n)).astype(np.float64)
                - imageio.imread(os.path.join(reference, n))
            )
            ** 2
        )
        for n in names
    ]
    mse = float(np.mean(errors))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--frames",
        type=int,
        default=100,
        help="driving frames end to end (default: all 100 of the example)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per batch size")
    parser.add_argument("--workdir", help="keep the exports here (default: a temporary folder)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.workdir, args.frames, args.repeats)

    workdir = args.workdir or tempfile.mkdtemp(prefix="fomm-bench-")
    os.makedirs(workdir, exist_ok=True)
    tf = import_tensorflow()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"tensorflow {tf.__version__}; exports in {workdir}",
        flush=True,
    )
    with quiet():
        if not os.path.isfile(os.path.join(workdir, "weights.npz")):
            model = build_exports(workdir)
        else:
            model = load_weights(os.path.join(workdir, "weights.npz"))
        flops = gflop_per_frame(model)
        peak = matmul_peak()
    del model
    print(
        f"GFLOP per frame: generator {flops['generator']:.1f}, per-frame part "
        f"(animate_encoded) {flops['animate_encoded']:.1f}, kp_detector "
        f"{flops['kp_detector']:.1f}; matmul peak {peak:.0f} GFLOP/s",
        flush=True,
    )

    results = []
    for target in TARGETS:
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            target,
            "--workdir",
            workdir,
            "--frames",
            str(args.frames),
            "--repeats",
            str(args.repeats),
        ]
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{target}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"measured {target}", flush=True)

    sizes = {"keras": None, "savedmodel": size_mib(os.path.join(workdir, "saved"))}
    for target in TARGETS[2:]:
        sizes[target] = size_mib(os.path.join(workdir, target))
    reference = next((r["frames_dir"] for r in results if r["target"] == "tflite"), None)
    per_frame_flops = flops["animate_encoded"] + flops["kp_detector"]
    original_fps = 1 / ORIGINAL_SECONDS_PER_FRAME
    print()
    print(
        "| target | s/frame batch 1 | s/frame batch 4 | GFLOP/s (% of peak) | end to end "
        "frames/s | vs original | peak RSS MiB | size MiB | PSNR vs float32 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        best = min(r["s_per_frame_b1"], r["s_per_frame_b4"])
        achieved = per_frame_flops / best
        quality = ""
        if r["target"].startswith("tflite-") and reference:
            quality = f"{psnr(r['frames_dir'], reference):.1f} dB"
        size = sizes[r["target"]]
        print(
            f"| {r['target']} | {r['s_per_frame_b1']:.3f} | {r['s_per_frame_b4']:.3f} | "
            f"{achieved:.0f} ({100 * achieved / peak:.0f}%) | {r['end_to_end_fps']:.2f} | "
            f"{r['end_to_end_fps'] / original_fps:.2f}x | {r['peak_rss_mib']:.0f} | "
            f"{'-' if size is None else f'{size:.0f}'} | {quality} |"
        )
    print(
        f"\noriginal PyTorch: {ORIGINAL_SECONDS_PER_FRAME:.3f} s/frame = {original_fps:.2f} "
        f"frames/s (generator + keypoint detector, batch 1)"
    )


if __name__ == "__main__":
    main()
