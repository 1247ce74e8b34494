"""The whole process of the scripts as a user runs them, beside the original's demo.py:
seconds for a 32-frame video and for a 1-frame video (the time to the first frame: process
start, imports, model loading, the first frame animated and written). Called by
``benchmarks/bench.py --whole`` on its random full-size vox model. The same cuts scaled to
1280x720 time ``testlite.py --quantize dynamic`` (and the original) on footage that needs
resizing, which testlite.py does in a child process (modules/app/frame_process.py).

run.py needs the random weights as a checkpoint file, written with torch (a test
requirement; without it run.py is skipped). ``--original DIR`` (a checkout of
github.com/AliaksandrSiarohin/first-order-model, never part of this project) times its
``demo.py --cpu`` on the same inputs; its optional ``ffmpeg`` import (only for --audio) is
satisfied by an empty stand-in when ffmpeg-python is not installed.
"""

import importlib.util
import os
import statistics
import subprocess
import sys
import time

from random_model import CONFIG, ROOT
from random_model import EXAMPLE_DRIVING as DRIVING
from random_model import EXAMPLE_SOURCE as SOURCE

FRAMES = (32, 1)
# Issue 12, measured on the reference machine before this benchmark timed the original:
# demo.py --cpu --relative --adapt_scale on a 32-frame video.
ORIGINAL_32_FRAMES_SECONDS = (24.6, 25.6)


LARGE = (1280, 720)  # footage that needs resizing


def cut_video(frames, path, size=None):
    """The first ``frames`` frames of the example video (H.264, no audio), scaled to ``size``
    (width, height; None: as it is)."""
    import imageio_ffmpeg

    scale = ["-vf", f"scale={size[0]}:{size[1]}"] if size else []
    if not os.path.isfile(path):
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", DRIVING, *scale]
            + ["-frames:v", str(frames), "-an", "-c:v", "libx264", "-crf", "10", path],
            check=True,
        )
    return path


def write_checkpoint(workdir):
    """The benchmark's random weights as an original-layout checkpoint (torch.save)."""
    path = os.path.join(workdir, "vox-random.pth.tar")
    if os.path.isfile(path):
        return path
    if importlib.util.find_spec("torch") is None:
        return None
    import numpy as np
    import torch
    from random_model import load_weights

    from modules.convert.weights import state_dict, torch_state

    model = load_weights(os.path.join(workdir, "weights.npz"))
    parts = {}
    for part, keras in (
        ("generator", model.keras_generator),
        ("kp_detector", model.keras_kp_detector),
    ):
        weights = state_dict(keras)
        # the anti-alias kernels, which the port computes but the original loads
        weights.update(
            {k: e.expected for k, e in torch_state(keras).items() if e.expected is not None}
        )
        parts[part] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    torch.save(parts, path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def commands(workdir, checkpoint):
    """(label, argv without the driving video and output) of every timed command."""
    motion = ["--relative", "--adapt_scale", "--source_image", SOURCE]
    found = []
    if checkpoint:
        keras = ["run.py", "--model", "vox", "--config", CONFIG, "--checkpoint", checkpoint]
        found.append(("run.py", keras + motion))
        found.append(("run.py --precision bfloat16", keras + motion + ["--precision", "bfloat16"]))
    if os.path.isdir(os.path.join(workdir, "saved")):
        found.append(
            ("test.py", ["test.py", "--model", "saved", "--saved_models", workdir] + motion)
        )
    lite = ["testlite.py", "--tflite", workdir, "--model"]
    for folder, label in (
        ("tflite", "testlite.py"),
        ("tflite-dynamic", "testlite.py --quantize dynamic"),
        ("tflite-mobile-dynamic", "testlite.py, mobile build --quantize dynamic"),
    ):
        if os.path.isdir(os.path.join(workdir, folder)):
            quantize = folder.endswith("-dynamic")
            name = folder.removesuffix("-dynamic")
            argv = lite + [name] + motion + (["--quantize", "dynamic"] if quantize else [])
            # The best of the repeats maps the packed weights that the first one wrote.
            found.append((label, argv))
            found.append((f"{label}, --no_weight_cache", argv + ["--no_weight_cache"]))
    return found


def timed(argv, cwd=ROOT, env=None):
    """Wall time of one run of ``argv`` (a failure raises)."""
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def original_argv(original, checkpoint, driving, output):
    return [
        sys.executable,
        os.path.join(original, "demo.py"),
        "--config",
        CONFIG,
        "--checkpoint",
        checkpoint,
        "--source_image",
        SOURCE,
        "--driving_video",
        driving,
        "--result_video",
        output,
        "--relative",
        "--adapt_scale",
        "--cpu",
    ]


# Imported by demo.py (ffmpeg for --audio) or by the training code it imports (animate.py ->
# frames_dataset.py, augmentation.py, logger.py) but never used by the demo itself.
ORIGINAL_UNUSED_IMPORTS = {
    "ffmpeg.py": "",
    "pandas.py": "",
    "torchvision.py": "",
    "matplotlib/__init__.py": "",
    "matplotlib/pyplot.py": "",
    "sklearn/__init__.py": "",
    "sklearn/model_selection.py": "def train_test_split(*args, **kwargs): ...\n",
}


def original_env(workdir):
    """The environment for demo.py: empty stand-ins for the packages above that are not
    installed (measurement only; real ones would only add to the original's start-up)."""
    env = dict(os.environ)
    stub = os.path.join(workdir, "stub")
    for name, text in ORIGINAL_UNUSED_IMPORTS.items():
        if importlib.util.find_spec(name.split("/")[0].removesuffix(".py")) is None:
            os.makedirs(os.path.dirname(os.path.join(stub, name)), exist_ok=True)
            with open(os.path.join(stub, name), "w") as f:
                f.write(text)
    env["PYTHONPATH"] = stub + os.pathsep + env.get("PYTHONPATH", "")
    return env


def whole_process(workdir, original=None, repeats=3):
    """Prints a markdown table of the whole-process seconds: the best of ``repeats`` runs of
    each command, taken in turn with every other command's, and the 32-frame median."""
    checkpoint = write_checkpoint(workdir)
    large = "x".join(map(str, LARGE))
    videos = {
        (n, size): cut_video(n, os.path.join(workdir, f"driving-{size}-{n}.mp4"), scale)
        for n in FRAMES
        for size, scale in (("example", None), (large, LARGE))
    }
    output = os.path.join(workdir, "whole.mp4")
    runs = []  # (label, footage, driving video -> argv, cwd, env)
    if original and checkpoint:

        def demo(driving):
            return original_argv(original, checkpoint, driving, output)

        label = "original demo.py --cpu (torch, measured here)"
        env = original_env(workdir)
        for size in ("example", large):
            runs.append((label, size, demo, original, env))
    # testlite.py's packed weights (modules/app/weight_cache.py) in the benchmark's folder
    ours = dict(os.environ, XDG_CACHE_HOME=os.path.join(workdir, "cache"))
    for label, script in commands(workdir, checkpoint):

        def argv(driving, script=script):
            return [sys.executable, *script, "--driving_video", driving, "--output", output]

        runs.append((label, "example", argv, ROOT, ours))
        if label == "testlite.py --quantize dynamic":
            runs.append((label, large, argv, ROOT, ours))
    # Round robin: every row's runs are spread over the whole measurement, so a change in
    # the machine's load (other jobs, turbo, page cache) reaches every row alike.
    times = {(i, n): [] for i in range(len(runs)) for n in FRAMES}
    for repeat in range(repeats):
        for i, (_, size, argv, cwd, env) in enumerate(runs):
            for n in FRAMES:
                times[i, n].append(timed(argv(videos[n, size]), cwd, env))
        print(f"measured round {repeat + 1} of {repeats}", flush=True)
    rows = [
        (label, size, {n: min(times[i, n]) for n in FRAMES}, statistics.median(times[i, 32]))
        for i, (label, size, *_) in enumerate(runs)
    ]
    bases = {
        size: (seconds[32], median)
        for label, size, seconds, median in rows
        if label.startswith("original")
    }
    low, high = ORIGINAL_32_FRAMES_SECONDS
    print(
        f"\n| whole process, --relative --adapt_scale, best of {repeats} runs taken in turn "
        "| footage | 32 frames (s) | median (s) | first frame: 1-frame video (s) "
        "| vs original, 32 frames: best, median "
        f"| vs issue 12's original ({low}-{high} s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, size, seconds, median in rows:
        mine = seconds[32]
        if size in bases:
            ratio = f"{bases[size][0] / mine:.2f}x, {bases[size][1] / median:.2f}x"
        else:
            ratio = "-"
        issue = f"{low / mine:.2f}-{high / mine:.2f}x" if size == "example" else "-"
        footage = "256x256 example" if size == "example" else size
        print(
            f"| {label} | {footage} | {mine:.1f} | {median:.1f} | {seconds[1]:.1f} "
            f"| {ratio} | {issue} |"
        )
