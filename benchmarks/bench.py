"""Speed, memory and size of run.py's Keras models (float32 and --precision bfloat16), the
SavedModels and the TF Lite models (float32, float16, dynamic-range int8, and the mobile
builds: static batch 4, prediction only, flags hardcoded) on the full-size vox model, and the
whole process of the scripts beside the original (benchmarks/process.py). Needs no download.

    python benchmarks/bench.py [--frames 40] [--repeats 3] [--targets keras,tflite] [--whole]

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

from random_model import (  # noqa: E402
    EXAMPLE_DRIVING,
    EXAMPLE_SOURCE,
    load_weights,
    workdir_model,
)

from modules.app.cli import import_tensorflow, quiet  # noqa: E402
from modules.export.contract import QUANTIZATIONS, build_name  # noqa: E402

# The folder names of build.py's builds: keras-bfloat16 is run.py --precision bfloat16;
# tflite, tflite-float16, tflite-dynamic; tflite-mobile and tflite-mobile-dynamic the mobile
# builds (MOBILE) in float32 and with --quantize dynamic.
TARGETS = (
    "keras",
    build_name("keras", "bfloat16"),
    "savedmodel",
    *(build_name("tflite", q) for q in (None, *QUANTIZATIONS)),
    "tflite-mobile",
    build_name("tflite-mobile", "dynamic"),
)
# The mobile builds: build.py --static_batch 4 --prediction_only --hardcode 1,1 (the
# benchmark animates with --relative --adapt_scale), float32 and with --quantize dynamic.
MOBILE = {"static_batch": 4, "prediction_only": True, "hardcode": (1, 1)}
# What each target's frames are compared with (PSNR).
REFERENCE = {"keras-bfloat16": "keras", "tflite-": "tflite"}
# The original PyTorch on the same 2-core machine (issue #5, re-measured: README, Speed):
# generator 0.69 s/frame + keypoint detector 0.028 s/frame at batch 1.
ORIGINAL_SECONDS_PER_FRAME = 0.69 + 0.028


def build_exports(workdir, targets):
    """The random model's weights (once), then the SavedModels and TF Lite models that
    ``targets`` need and ``workdir`` does not have yet."""
    from modules.atomic import write_file
    from modules.export import savedmodel, tflite
    from modules.export.contract import MODULE_NAMES, tflite_path
    from modules.signatures import hardcoded_flags

    model = workdir_model(workdir)
    mobile = model.mobile_signatures(
        static_batch=MOBILE["static_batch"],
        prediction_only=MOBILE["prediction_only"],
        hardcode=hardcoded_flags(*MOBILE["hardcode"]),
    )
    for module in MODULE_NAMES:
        saved = os.path.join(workdir, "saved", module)
        if "savedmodel" in targets and not os.path.isdir(saved):
            savedmodel.save_saved_model(model.signatures, module, saved)
        for target in targets:
            path = tflite_path(os.path.join(workdir, target), module)
            if not target.startswith("tflite") or os.path.isfile(path):
                continue
            quantize = target.rsplit("-", 1)[1] if target.endswith(("float16", "dynamic")) else None
            signatures = mobile if target.startswith("tflite-mobile") else model.tflite_signatures
            write_file(path, tflite.convert_tflite(signatures, module, quantize))
    return model


def load_target(target, workdir):
    from modules.app.sources import LiteModels, SavedModels

    if target.startswith("keras"):
        precision = target.split("-")[1] if "-" in target else None
        return load_weights(os.path.join(workdir, "weights.npz"), precision)
    if target == "savedmodel":
        return SavedModels(os.path.join(workdir, "saved"), "benchmarks/bench.py")
    return LiteModels(os.path.join(workdir, target), "benchmarks/bench.py")


def gflop_per_frame(model):
    """GFLOP of one frame (batch 1) of the full generator, its per-frame part and the keypoint
    detector, counted by TensorFlow's profiler on the traced graphs of the plain convolutions
    (the original's work): the GFLOP/s column compares every target on the same work, and
    the faster convolutions of run.py and test.py go past the peak, as int8 does."""
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

    functions = model.portable_signatures.functions()
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
    if target != "savedmodel":  # lossless frames for the reduced-precision models' PSNR
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
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated subset of {','.join(TARGETS)} (default: all)",
    )
    parser.add_argument(
        "--whole",
        action="store_true",
        help="also time the scripts' whole process and first frame (benchmarks/process.py)",
    )
    parser.add_argument(
        "--original",
        metavar="DIR",
        help="with --whole: a checkout of the original first-order-model to time beside",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.workdir, args.frames, args.repeats)
    targets = [t for t in TARGETS if t in args.targets.split(",")]

    workdir = args.workdir or tempfile.mkdtemp(prefix="fomm-bench-")
    os.makedirs(workdir, exist_ok=True)
    tf = import_tensorflow()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"tensorflow {tf.__version__}; exports in {workdir}",
        flush=True,
    )
    with quiet():
        model = build_exports(workdir, targets)
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
    for target in targets:
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

    sizes = {t: size_mib(os.path.join(workdir, t)) for t in targets if t.startswith("tflite")}
    sizes["savedmodel"] = size_mib(os.path.join(workdir, "saved"))
    frames = {r["target"]: r["frames_dir"] for r in results if "frames_dir" in r}
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
        reference = next((v for k, v in REFERENCE.items() if r["target"].startswith(k)), None)
        if reference in frames:
            quality = f"{psnr(r['frames_dir'], frames[reference]):.1f} dB vs {reference}"
        size = sizes.get(r["target"])
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
    if args.whole:
        from process import whole_process

        whole_process(workdir, args.original, args.repeats)


if __name__ == "__main__":
    main()
