"""Why ``build.py --web_litert`` is float32 with a Winograd F(4x4, 3x3) bottleneck: four of
the generator's bottleneck convolutions (64x64 pixels, 256 channels, 3x3, bench weights) as TF
Lite files in three forms, timed in LiteRT.js (WebAssembly, headless Chromium) and in LiteRT
Python (native XNNPACK), at one thread and at one thread per core. Needs no download.

    python benchmarks/bench_conv_wasm.py [--repeats 7]

The forms: the direct float32 convolution (what TF Lite builds get), the same with int8 weights
and activations quantized on the fly (``--quantize dynamic``), and ``ops.winograd4_conv3x3``
(``layers.WEB_LITERT_FORMS``). Each timing is the best of ``--repeats``; the Winograd output's
largest difference from the direct convolution's is printed beside it.
"""

import argparse
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import browser  # noqa: E402

SHAPE = (1, 64, 64, 256)
LAYERS = 4


def convert(folder):
    """Writes FORM.tflite for each form to ``folder``; returns (forms, Winograd's max diff)."""
    import tensorflow as tf

    from modules.ops import winograd4_conv3x3

    rng = np.random.default_rng(0)
    kernels = [
        0.02 * rng.standard_normal((3, 3, 256, 256)).astype(np.float32) for _ in range(LAYERS)
    ]

    def stack(conv):
        @tf.function(input_signature=[tf.TensorSpec(SHAPE, tf.float32, name="x")])
        def run(x):
            for kernel in kernels:
                x = conv(x, tf.constant(kernel))
            return {"y": x}

        return run

    direct = stack(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"))
    winograd = stack(winograd4_conv3x3)
    x = rng.standard_normal(SHAPE).astype(np.float32)
    diff = float(np.abs(winograd(x)["y"] - direct(x)["y"]).max())
    forms = {
        "direct": (direct, False),
        "dynamic-int8": (direct, True),
        "winograd4": (winograd, False),
    }
    for name, (function, quantize) in forms.items():
        module = tf.Module()
        module.run = function
        saved = os.path.join(folder, f"saved-{name}")
        tf.saved_model.save(module, saved, signatures={"serving_default": function})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        with open(os.path.join(folder, f"{name}.tflite"), "wb") as f:
            f.write(converter.convert())
    return list(forms), diff


def native(path, threads, repeats):
    import time

    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(path, num_threads=threads).get_signature_runner()
    x = (np.sin(np.arange(np.prod(SHAPE))) / 2).reshape(SHAPE).astype(np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        runner(x=x)
        best = min(best, time.perf_counter() - start)
    return best


def in_browser(folder, forms, threads, repeats):
    """Best seconds of each form in LiteRT.js with ``threads`` threads."""
    times = {}
    with browser.serve(folder, isolated=threads > 1) as url, browser.chromium() as driver:
        browser.open_bench_page(driver, url, "litert.html", "litertBench")
        for name in forms:
            options = {"file": f"../models/{name}.tflite", "threads": threads > 1}
            options.update(numThreads=threads, repeats=repeats)
            result = browser.call(driver, "window.litertBench.timeFile", options)
            if isinstance(result, dict):
                sys.exit(f"LiteRT.js failed on {name}: {result['error']}")
            times[name] = min(result)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs, best counts")
    args = parser.parse_args()
    reason = browser.missing()
    if reason:
        sys.exit(f"bench_conv_wasm.py needs the browser: {reason}")
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as folder:
        forms, diff = convert(folder)
        rows = {name: [] for name in forms}
        for threads in (1, cores):
            for name, seconds in in_browser(folder, forms, threads, args.repeats).items():
                rows[name].append(seconds)
            for name in forms:
                rows[name].append(
                    native(os.path.join(folder, f"{name}.tflite"), threads, args.repeats)
                )
    print(
        f"{LAYERS} convolutions 3x3, {SHAPE[1]}x{SHAPE[2]}, {SHAPE[3]} channels, batch 1; seconds"
    )
    print(f"winograd4's largest difference from direct: {diff:.2g}")
    print(f"| form | LiteRT.js 1 thread | LiteRT Python 1 thread | LiteRT.js {cores} threads "
          f"| LiteRT Python {cores} threads |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, (js1, py1, js, py) in rows.items():
        print(f"| {name} | {js1:.3f} | {py1:.3f} | {js:.3f} | {py:.3f} |")


if __name__ == "__main__":
    main()
