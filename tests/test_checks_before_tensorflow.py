"""Every check that needs no model runs before TensorFlow is imported.

Each script runs in a fresh process where ``import tensorflow`` fails (``sys.modules`` holds
None for it, as for a machine without TensorFlow): a check that only came after the import
would end in an ImportError traceback instead of the expected one-line error. The process's
own peak memory and CPU time (``os.wait4``) show it stayed small."""

import os
import sys

import numpy as np
import pytest
from helpers import demo, demo_flags, measured_run, model_args, png_header_only, read_frames

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-vox")
CONFIG = os.path.join(TINY, "config.yaml")
CHECKPOINT = os.path.join(TINY, "tiny-vox-cpk.pth.tar")
DRIVING = os.path.join(TINY, "demo", "driving.mp4")  # declares 33 frames
WITHOUT_TF = (
    "import os, runpy, sys; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
    "sys.path.insert(0, os.path.dirname(sys.argv[0])); "  # as python SCRIPT, from any directory
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)
PEAK_KIB = 400 * 1024  # TensorFlow alone takes about 600 MB


def run_without_tensorflow(tmp_path, script, *args):
    """(exit code, stderr, peak resident KiB, CPU seconds) of ``script`` run where TensorFlow
    cannot load."""
    with open(tmp_path / "stderr", "w+") as err:
        command = [sys.executable, "-c", WITHOUT_TF, os.path.join(ROOT, script), *args]
        code, peak, cpu = measured_run(command, err)
        err.seek(0)
        return code, err.read(), peak, cpu


RUN = ["--model", "tiny-vox", "--config", CONFIG, "--checkpoint", CHECKPOINT]
CASES = {
    "missing checkpoint": (
        "run.py",
        ["--model", "x", "--config", CONFIG, "--checkpoint", "{tmp}/nope.pth.tar"],
        "checkpoint not found",
    ),
    "missing config": (
        "run.py",
        ["--model", "x", "--config", "{tmp}/nope.yaml", "--checkpoint", CHECKPOINT],
        "config file not found",
    ),
    "output parent is a file": (
        "run.py",
        [*RUN, "--output", "{tmp}/file.txt/result.mp4"],
        "file.txt' is not a folder",
    ),
    "best frame past the declared end": (
        "run.py",
        [*RUN, "--driving_video", DRIVING, "--best_frame", "50"],
        "--best_frame 50 is past the end",
    ),
    "flags that do not combine": (
        "run.py",
        [*RUN, "--best_frame", "1", "--find_best_frame"],
        "give one of them",
    ),
    "face box past the frame's edge": (
        "run.py",
        [*RUN, "--driving_video", DRIVING, "--driving_box", "0,0,321,10"],
        "--driving_box 0,0,321,10 reaches past the edge",
    ),
    "paste-back without a crop": ("run.py", [*RUN, "--paste_back"], "add --crop"),
    "photo above the size limit": (
        "run.py",
        [*RUN, "--source_image", "{tmp}/huge.png"],
        "is too large (20000 x 20000 pixels",
    ),
    "missing SavedModels": (
        "test.py",
        ["--model", "tiny-vox", "--saved_models", "{tmp}/none"],
        "no SavedModels for model 'tiny-vox'",
    ),
    "missing TF Lite models": (
        "testlite.py",
        ["--model", "tiny-vox", "--tflite", "{tmp}/none"],
        "no TF Lite models for model 'tiny-vox'",
    ),
    "build: missing checkpoint": (
        "build.py",
        ["--model", "x", "--config", CONFIG, "--checkpoint", "{tmp}/nope.pth.tar"],
        "checkpoint not found",
    ),
    "build: output under a file": (
        "build.py",
        [*RUN, "--tflite", "{tmp}/file.txt/tflite"],
        "file.txt' is not a folder",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_fails_before_tensorflow(tmp_path, name):
    script, args, message = CASES[name]
    (tmp_path / "file.txt").write_text("a plain file")
    png_header_only(tmp_path / "huge.png", 20_000, 20_000)
    args = [a.format(tmp=tmp_path) for a in args]
    out = tmp_path / "result.mp4"
    if "--output" not in args and script != "build.py":
        args += ["--output", str(out)]
    code, err, peak, cpu = run_without_tensorflow(tmp_path, script, *args)
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert peak < PEAK_KIB, f"{peak} KiB"
    # CPU time, not wall time: this machine's load must not fail the test. About 0.8 s here
    # (numpy, scikit-image, imageio and an ffmpeg probe), where TensorFlow alone takes 3 s.
    assert cpu < 2.5, f"{cpu:.1f} s of CPU"


def test_the_method_sees_a_tensorflow_import(tmp_path):
    """The same run with good inputs reaches the import, and fails there: the test above
    would see a late check."""
    code, err, _, _ = run_without_tensorflow(tmp_path, "run.py", *RUN, "--frames", "1")
    assert code != 0 and "ModuleNotFoundError" in err and "tensorflow" in err, err


@pytest.mark.slow
def test_testlite_animates_without_tensorflow(tmp_path, built):
    """testlite.py needs only LiteRT: it animates where TensorFlow cannot load, with demo.py's
    frames, and stays far below TensorFlow's own memory."""
    out = tmp_path / "frames"
    code, err, peak, _ = run_without_tensorflow(
        tmp_path,
        "testlite.py",
        *model_args("testlite.py", "tiny-vox", built),
        *demo_flags(),
        "--output",
        f"{out}/",
        "--relative",
        "--adapt_scale",
    )
    assert code == 0, err
    expected = np.load(demo("tiny-vox") / "expected.npz")["frames_rel_adapt"]
    assert np.abs(read_frames(out).astype(int) - expected).max() <= 1
    assert peak < PEAK_KIB, f"{peak} KiB"
