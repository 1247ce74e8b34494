"""The whole process of the scripts as a user runs them, beside the original's demo.py:
seconds for a 32-frame video and for a 1-frame video (the time to the first frame: process
start, imports, model loading, the first frame animated and written). Called by
``benchmarks/bench.py --whole`` on its random full-size vox model.

run.py needs the random weights as a checkpoint file, written with torch (a test
requirement; without it run.py is skipped). ``--original DIR`` (a checkout of
github.com/AliaksandrSiarohin/first-order-model, never part of this project) times its
``demo.py --cpu`` on the same inputs; its optional ``ffmpeg`` import (only for --audio) is
satisfied by an empty stand-in when ffmpeg-python is not installed.
"""

import importlib.util
import os
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


def cut_video(frames, path):
    """The first ``frames`` frames of the example video (H.264, no audio)."""
    import imageio_ffmpeg

    if not os.path.isfile(path):
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", DRIVING]
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


def timed(argv, repeats, cwd=ROOT, env=None):
    """Smallest wall time of ``repeats`` runs of ``argv`` (a failure raises)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}")
        best = min(best, time.perf_counter() - start)
    return best


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
    """Prints a markdown table of the whole-process seconds (best of ``repeats``)."""
    checkpoint = write_checkpoint(workdir)
    videos = {n: cut_video(n, os.path.join(workdir, f"driving-{n}.mp4")) for n in FRAMES}
    output = os.path.join(workdir, "whole.mp4")
    rows = []
    if original and checkpoint:
        env = original_env(workdir)
        seconds = {
            n: timed(original_argv(original, checkpoint, videos[n], output), repeats, original, env)
            for n in FRAMES
        }
        rows.append(("original demo.py --cpu (torch, measured here)", seconds))
        print("measured the original", flush=True)
    # testlite.py's packed weights (modules/app/weight_cache.py) in the benchmark's folder
    ours = dict(os.environ, XDG_CACHE_HOME=os.path.join(workdir, "cache"))
    for label, argv in commands(workdir, checkpoint):
        seconds = {
            n: timed(
                [sys.executable, *argv, "--driving_video", videos[n], "--output", output],
                repeats,
                env=ours,
            )
            for n in FRAMES
        }
        rows.append((label, seconds))
        print(f"measured {label}", flush=True)
    base = rows[0][1][32] if original and checkpoint else None
    low, high = ORIGINAL_32_FRAMES_SECONDS
    print(
        "\n| whole process, --relative --adapt_scale | 32 frames (s) | "
        "first frame: 1-frame video (s) "
        f"| vs original, 32 frames | vs issue 12's original ({low}-{high} s) |"
    )
    print("|---|---|---|---|---|")
    for label, seconds in rows:
        mine = seconds[32]
        ratio = f"{base / mine:.2f}x" if base else "-"
        print(
            f"| {label} | {mine:.1f} | {seconds[1]:.1f} | {ratio} | "
            f"{low / mine:.2f}-{high / mine:.2f}x |"
        )
