"""Reconstruction frames/s over a dataset: serially, on Ray with 1 worker and with 2 workers,
and the peak memory of each worker. Full-size vox model with bench.py's random calibrated
weights (Keras, as run.py); needs no download.

    python benchmarks/dataset.py [--videos 4] [--frames 25] [--workdir DIR]

The dataset is ``--videos`` 256x256 H.264 videos of ``--frames`` frames cut from
example/driving.mp4. Each setting runs in a fresh process; the timings count from the moment
the models are loaded (Ray: every worker loaded) to the last output written, visualization
encoding included. README.md (Dataset modes, planning) records the result.
"""

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

SETTINGS = {"serial": None, "ray-1": 1, "ray-2": 2}


def make_dataset(folder, videos, frames):
    """``videos`` videos of ``frames`` 256x256 frames from example/driving.mp4."""
    import numpy as np
    from skimage import img_as_ubyte

    from modules.app.video import VideoReader, resize_frame
    from modules.app.video_writer import VideoWriter

    with VideoReader(os.path.join(ROOT, "example", "driving.mp4")) as reader:
        source = [img_as_ubyte(resize_frame(f, (256, 256))) for f in reader]
    for v in range(videos):
        with VideoWriter(os.path.join(folder, f"video{v}.mp4"), 25) as writer:
            for i in range(frames):
                writer.append(np.ascontiguousarray(source[(v * frames + i) % len(source)]))


def load_models(weights):
    """The benchmark's Keras models (runs where the jobs run)."""
    sys.path.insert(0, HERE)
    import bench

    return bench.load_weights(weights)  # a modules.convert.model.Model: a ModelSource


def measure(setting, workdir):
    from modules.app.dataset import dataset_videos
    from modules.app.distributed import run_ray, run_serial
    from modules.app.evaluate import Job
    from modules.app.modes import make_worker

    folder, videos = dataset_videos(os.path.join(workdir, "data"))
    jobs = [Job(v, os.path.join(folder, v), os.path.join(folder, v)) for v in videos]
    visualizer = {"kp_size": 5, "draw_border": True, "colormap": "gist_rainbow"}
    weights = os.path.join(workdir, "weights.npz")
    worker = functools.partial(
        make_worker,
        functools.partial(_load, weights=weights),
        None,
        "reconstruction",
        visualizer,
        ".mp4",
        None,
        4,
    )
    failures = []

    def report(job, result, error):
        if error:
            failures.append((job.name, error))

    if SETTINGS[setting] is None:
        from modules.app.cli import import_tensorflow

        import_tensorflow()
        outcome = run_serial(jobs, worker, report)
    else:
        outcome = run_ray(jobs, worker, report, workers=SETTINGS[setting])
    return {
        "setting": setting,
        "frames": outcome.frames,
        "seconds": outcome.seconds,
        "fps": outcome.frames / outcome.seconds,
        "peak_mib": outcome.worker_peak_mib,
        "failures": failures,
    }


def _load(args, weights):
    return load_models(weights)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=4, help="videos in the dataset")
    parser.add_argument("--frames", type=int, default=25, help="frames per video")
    parser.add_argument("--workdir", help="keep the weights and dataset here")
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="fomm-dataset-bench-")
    if args.setting:
        print(json.dumps(measure(args.setting, workdir)))
        return
    os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
    if not os.path.isfile(os.path.join(workdir, "weights.npz")):
        import bench

        from modules.app.cli import import_tensorflow, quiet

        import_tensorflow()
        with quiet():
            bench.save_weights(bench.random_model(), os.path.join(workdir, "weights.npz"))
    if not os.listdir(os.path.join(workdir, "data")):
        make_dataset(os.path.join(workdir, "data"), args.videos, args.frames)
    print(f"{os.cpu_count()} cores; dataset and weights in {workdir}", flush=True)
    print("| setting | frames | seconds | frames/s | peak RSS per worker MiB |")
    print("|---|---|---|---|---|")
    for setting in SETTINGS:
        command = [sys.executable, os.path.abspath(__file__), "--setting", setting]
        out = subprocess.run(command + ["--workdir", workdir], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{setting}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        peaks = ", ".join(f"{p:.0f}" for p in r["peak_mib"])
        print(
            f"| {setting} | {r['frames']} | {r['seconds']:.1f} | {r['fps']:.2f} | {peaks} |",
            flush=True,
        )
        if r["failures"]:
            print(f"  failures: {r['failures']}", file=sys.stderr)


if __name__ == "__main__":
    main()
