"""Speed of the web page (web/index.html: ONNX Runtime Web, or LiteRT.js for the -litert
models, on WebAssembly) in headless Chromium: seconds per frame of
``window.fomm.animateFrames`` for the tiny test model and the full-size vox model with float32,
float16 and int8 (--web_int8) weights and as LiteRT.js models (--web_litert), and the peak
memory of the full-size builds. Needs no download.

    python benchmarks/bench_web.py [--frames 8] [--workdir DIR]

The vox model has benchmarks/bench.py's random weights (calibrated batch-norm statistics),
written as a checkpoint (needs torch) that ``build.py --nolite --web --web_float16
--web_int8``, then ``build.py --nolite --web_litert``, build in child processes, whose peak
resident memory is reported. Each model
runs with one WebAssembly thread (``?threads=1``) and with one thread per core (the page is
cross-origin isolated: on this plain static server, by its service worker). A first call
loads the model and is not timed; then the example video's first N frames (batches of 4) are
animated twice and the faster run counts. Prints a markdown table; docs/web.md records it
with the machine.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import browser  # noqa: E402

TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-vox")
MODELS = ("tiny-vox", "tiny-vox-int8", "tiny-vox-litert", "vox", "vox-float16", "vox-int8")
MODELS += ("vox-litert",)
WEB = ("--nolite", "--web", "--web_float16", "--web_int8")
LITERT = ("--nolite", "--web_litert")  # the TF Lite converter's peak, measured on its own


def checkpoint(workdir):
    """bench.py's random vox weights as a checkpoint in ``workdir`` (made in a child process,
    so that this one stays without TensorFlow)."""
    path = os.path.join(workdir, "vox-random.pth.tar")
    if not os.path.isfile(path):
        code = (
            "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
            "from modules.app.cli import import_tensorflow, quiet\n"
            "import_tensorflow()\n"
            "import process, random_model\n"
            "with quiet():\n"
            "    random_model.workdir_model(sys.argv[3])\n"
            "    sys.exit(0 if process.write_checkpoint(sys.argv[3]) else 'needs torch')\n"
        )
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, "-c", code, ROOT, here, workdir], check=True)
    return path


def build_py(*argv):
    """Runs build.py; returns its peak resident memory in bytes (its own, from wait4)."""
    child = subprocess.Popen([sys.executable, os.path.join(ROOT, "build.py"), *argv], cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"build.py {' '.join(argv)} failed")
    return usage.ru_maxrss * 1024  # KiB on Linux


def build(workdir, models):
    """The web models of MODELS in ``models`` (kept when already there); returns the peak
    memory of the full-size builds in bytes ({flags: bytes}; empty when nothing was built)."""
    if all(os.path.exists(os.path.join(models, n, "model.json")) for n in MODELS):
        return {}
    out = ["--saved_models", os.path.join(workdir, "saved_models"), "--web_models", models]
    build_py("--model", "tiny-vox", "--config", os.path.join(TINY, "config.yaml"),
             "--checkpoint", os.path.join(TINY, "tiny-vox-cpk.pth.tar"), "--nolite", "--web",
             "--web_int8", "--web_litert", *out)  # fmt: skip
    print("building the full-size vox web models (a few minutes) ...", flush=True)
    vox = ["--model", "vox", "--config", os.path.join(ROOT, "config", "vox-256.yaml")]
    vox += ["--checkpoint", checkpoint(workdir)]
    return {flags: build_py(*vox, *flags, *out) for flags in (WEB, LITERT)}


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
        workdir = args.workdir or tmp
        models = os.path.join(workdir, "models")
        peaks = build(workdir, models)
        source, driving = frames(args.frames)
        rows, results = [], {}
        for name in MODELS:
            size = sum(
                os.path.getsize(os.path.join(models, name, f))
                for f in os.listdir(os.path.join(models, name))
            )
            row = [name, f"{size / 2**20:.0f}" if size > 2**20 * 10 else f"{size / 2**20:.1f}"]
            with browser.serve(models) as url, browser.chromium() as driver:
                for query in ("?threads=1", ""):
                    browser.open_page(driver, url + query)
                    version = driver.capabilities.get("browserVersion")
                    ort = driver.execute_script("return window.fomm.ort.env.versions.web")
                    load, per_frame, results[name] = measure(
                        driver, name, source, driving, args.repeats
                    )
                    threads = driver.execute_script("return window.fomm.threads()")
                    row += [f"{per_frame:.3f}", f"{load:.1f}"]
                    print(
                        f"{name}: {threads} thread(s): {per_frame:.3f} s/frame, load {load:.1f} s",
                        flush=True,
                    )
            rows.append(row)
    print()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, headless Chromium {version}, "
        f"onnxruntime-web {ort}, {args.frames} frames, batch 4, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end"
    )
    print()
    print(
        "| model | size MiB | s/frame, 1 thread | load s "
        f"| s/frame, {os.cpu_count()} threads | load s |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    for name, reference in (
        ("tiny-vox-int8", "tiny-vox"),
        ("vox-float16", "vox"),
        ("vox-int8", "vox"),
        ("tiny-vox-litert", "tiny-vox"),
        ("vox-litert", "vox"),
    ):
        quality = browser.psnr(results[name], results[reference])
        levels = np.abs(results[name].astype(int) - results[reference]).max()
        print(f"{name} frames against {reference} frames: PSNR {quality:.1f} dB, {levels} levels")
    for flags, peak in peaks.items():
        print(f"peak memory of build.py {' '.join(flags)} (full-size vox): {peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
