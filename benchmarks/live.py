"""Speed of live.py's loop: frames per second and latency (camera frame arrival -> result
ready, p50 and p95) of the float32, float16 and dynamic-range int8 TF Lite models at 1 and 2
LiteRT threads, with the example driving video played as a 25 fps camera. Needs no download.

    python benchmarks/live.py [--model vox|tiny] [--frames 100] [--workdir DIR]

--model vox (the default) is the full-size vox architecture with random weights, as
benchmarks/bench.py makes it (building its three TF Lite builds takes about 10 minutes and up
to 12 GB of memory the first time; --workdir keeps them); --model tiny is the tests' tiny-vox
model, built in seconds, to check the script. Prints a markdown table for docs/live.md.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from modules.export.contract import QUANTIZATIONS, build_name  # noqa: E402

TARGETS = tuple(build_name("tflite", q) for q in (None, *QUANTIZATIONS))
THREADS = (1, 2)
CAMERA = os.path.join(ROOT, "example", "driving.mp4")
SOURCE = os.path.join(ROOT, "example", "source.png")
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-vox")


def keras_model(kind, workdir):
    if kind == "vox":
        from random_model import workdir_model

        return workdir_model(workdir)
    from modules import load_model

    return load_model(os.path.join(TINY, "config.yaml"), os.path.join(TINY, "tiny-vox-cpk.pth.tar"))


def build(kind, workdir, targets=TARGETS):
    """The TF Lite builds ``targets`` of the model in ``workdir``/tflite*, those not there
    yet."""
    from modules.app.cli import import_tensorflow, quiet
    from modules.atomic import write_file
    from modules.export import tflite
    from modules.export.contract import MODULE_NAMES, tflite_path

    missing = [
        target
        for target in targets
        for module in MODULE_NAMES
        if not os.path.isfile(tflite_path(os.path.join(workdir, target), module))
    ]
    if not missing:
        return
    import_tensorflow()
    model = keras_model(kind, workdir)
    for target in targets:
        quantize = target.rsplit("-", 1)[1] if "-" in target else None
        for module in MODULE_NAMES:
            path = tflite_path(os.path.join(workdir, target), module)
            if not os.path.isfile(path):
                print(f"building {path}", file=sys.stderr, flush=True)
                with quiet():
                    write_file(
                        path, tflite.convert_tflite(model.tflite_signatures, module, quantize)
                    )


def measure(folder, threads, frames):
    """One live session (in this process) on ``folder``'s models; its stats."""
    from modules.app.images import load_image
    from modules.app.live.capture import Camera
    from modules.app.live.session import Session
    from modules.app.live.stats import Stats
    from modules.app.sources import LiteModels

    models = LiteModels(folder, "benchmarks/live.py", num_threads=threads)
    camera = Camera(CAMERA, timeout=30, limit=frames)
    stats = Stats(os.path.basename(folder), camera)
    session = Session(models, load_image(SOURCE), camera, stats, relative=True, adapt_scale=True)
    session.warm_up()
    with camera:
        session.run()
    return stats.summary(False)


def worker(folder, threads, frames):
    """``measure`` in a fresh process (one model in memory at a time); its stats."""
    import json

    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "sys.path.insert(0, sys.argv[1] + '/benchmarks'); import live; "
        "print(json.dumps(live.measure(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, ROOT, folder, str(threads), str(frames)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise SystemExit(f"{folder} at {threads} threads failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("vox", "tiny"), default="vox")
    p.add_argument("--frames", type=int, default=100, help="camera frames per run")
    p.add_argument("--workdir", help="where the builds are kept (default: a temporary folder)")
    p.add_argument(
        "--builds",
        default=",".join(TARGETS),
        help=f"comma-separated, of {', '.join(TARGETS)} (default: all)",
    )
    args = p.parse_args(argv)
    targets = args.builds.split(",")
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        p.error(f"unknown builds: {', '.join(unknown)}")
    workdir = args.workdir or tempfile.mkdtemp(prefix=f"fomm-live-{args.model}-")
    os.makedirs(workdir, exist_ok=True)
    build(args.model, workdir, targets)
    print(f"{args.model}, {cpu_name()}, {os.cpu_count()} cores; camera: {CAMERA} at 25 fps\n")
    print("| build | threads | fps | latency p50 ms | latency p95 ms | dropped | generator ms |")
    print("|---|---|---|---|---|---|---|")
    for target in targets:
        for threads in THREADS:
            s = worker(os.path.join(workdir, target), threads, args.frames)
            print(
                f"| {target} | {threads} | {s['fps']} | {s['latency_ms']['p50']} | "
                f"{s['latency_ms']['p95']} | {s['dropped']}/{s['frames_in']} | "
                f"{s['stages_ms']['generator']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
