"""Speed of the web page (web/index.html, ONNX Runtime Web on WebAssembly) in headless
Chromium: seconds per frame of ``window.fomm.animateFrames`` for the tiny test model and the
full-size vox model with float32 and float16 weights. Needs no download.

    python benchmarks/bench_web.py [--frames 8] [--workdir DIR]

The vox model has benchmarks/bench.py's random weights (calibrated batch-norm statistics).
Each model runs with one WebAssembly thread (what a plain static server such as
``python -m http.server`` gives) and with one thread per core (a cross-origin isolated page,
which the server makes with COOP/COEP headers). A first call loads the model and is not timed;
then the example video's first N frames (batches of 4) are animated twice and the faster run
counts. Prints a markdown table; README.md (Web page) records it with the machine.
"""

import argparse
import gc
import os
import platform
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import browser  # noqa: E402

from modules.app.cli import import_tensorflow, quiet  # noqa: E402

TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-vox")


def build(models):
    """Web models tiny-vox, vox and vox-float16 in ``models`` (kept when already there)."""
    import bench

    from modules import load_model
    from modules.export import web

    wanted = {"tiny-vox": None, "vox": False, "vox-float16": True}
    if all(os.path.exists(os.path.join(models, n, "model.json")) for n in wanted):
        return
    import_tensorflow()
    with quiet():
        tiny = load_model(
            os.path.join(TINY, "config.yaml"), os.path.join(TINY, "tiny-vox-cpk.pth.tar")
        )
        web.write_web_models(tiny, models, "tiny-vox")
        del tiny
        print("building the full-size vox web models (a few minutes) ...", flush=True)
        vox = bench.random_model()
        web.write_web_models(vox, models, "vox", ("float32", "float16"))
    del vox
    gc.collect()


def frames(count):
    import imageio.v2 as imageio
    import numpy as np

    source = imageio.imread(os.path.join(ROOT, "example", "source.png"))[..., :3]
    reader = imageio.get_reader(os.path.join(ROOT, "example", "driving.mp4"))
    driving = np.stack([frame for _, frame in zip(range(count), reader)])
    reader.close()
    return source, driving


def measure(driver, name, source, driving, repeats):
    start = time.perf_counter()
    browser.animate_frames(driver, name, source, driving[:1], True, True)
    load = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        frames = browser.animate_frames(driver, name, source, driving, True, True)
        best = min(best, time.perf_counter() - start)
    return load, best / len(driving), frames


def psnr(frames, reference):
    import numpy as np

    mse = np.mean((frames.astype(np.float64) - reference) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8, help="driving frames per run (default 8)")
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed runs, best counts (default 2)"
    )
    parser.add_argument("--workdir", help="keep the web models here (default: a temporary folder)")
    args = parser.parse_args()
    reason = browser.missing()
    if reason:
        sys.exit(f"bench_web.py needs the browser: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        models = os.path.join(args.workdir or tmp, "models")
        build(models)
        source, driving = frames(args.frames)
        rows, results = [], {}
        for name in ("tiny-vox", "vox", "vox-float16"):
            size = sum(
                os.path.getsize(os.path.join(models, name, f))
                for f in os.listdir(os.path.join(models, name))
            )
            row = [name, f"{size / 2**20:.0f}" if size > 2**20 * 10 else f"{size / 2**20:.1f}"]
            for isolated in (False, True):
                with browser.serve(models, isolated=isolated) as url, browser.chromium() as driver:
                    browser.open_page(driver, url)
                    version = driver.capabilities.get("browserVersion")
                    ort = driver.execute_script("return window.fomm.ort.env.versions.web")
                    threads = driver.execute_script(
                        "return self.crossOriginIsolated ? navigator.hardwareConcurrency : 1"
                    )
                    load, per_frame, results[name] = measure(
                        driver, name, source, driving, args.repeats
                    )
                    row += [f"{per_frame:.3f}", f"{load:.1f}"]
                    print(
                        f"{name}: {threads} thread(s): {per_frame:.3f} s/frame, load {load:.1f} s",
                        flush=True,
                    )
            rows.append(row)
    float16 = psnr(results["vox-float16"], results["vox"])
    print()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, headless Chromium {version}, "
        f"onnxruntime-web {ort}, {args.frames} frames, batch 4"
    )
    print()
    print("| model | size MiB | s/frame, 1 thread | load s | s/frame, 1 thread per core | load s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print(f"vox-float16 frames against vox (float32 weights) frames: PSNR {float16:.1f} dB")


if __name__ == "__main__":
    main()
