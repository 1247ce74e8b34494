"""What the tests share: the reference fixtures of the original, the tiny models, the
tolerances (tests/fixtures/README.md) and the build of the exports. Imported by the tests
(conftest.py keeps only the fixtures)."""

import functools
import importlib
import json
import os
import pathlib
import struct
import subprocess
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import imageio.v2 as imageio  # noqa: E402
import numpy as np  # noqa: E402

TESTS = pathlib.Path(__file__).resolve().parent
ROOT = TESTS.parent  # the repository, whatever the working directory
FIXTURES = TESTS / "fixtures"
CASES = ("tiny-vox", "tiny-mgif")
MODES = {  # fixture suffix -> process_kp flags (relative movement, relative jacobian, adapt)
    "abs": (0.0, 0.0, 0.0),
    "rel": (1.0, 1.0, 0.0),
    "rel_adapt": (1.0, 1.0, 1.0),
}
# Tolerances of tests/fixtures/README.md.
KP_TOL = 5e-5
IMAGE_TOL = 1e-4


def case_dir(case):
    return FIXTURES / case


def config_path(case):
    return case_dir(case) / "config.yaml"


def checkpoint_path(case):
    return case_dir(case) / f"{case}-cpk.pth.tar"


@functools.cache
def reference(case):
    with np.load(case_dir(case) / "reference.npz") as data:
        return {k: data[k] for k in data.files}


def images(case):
    """(source [1, H, W, 3], driving [N, H, W, 3]) as the model inputs: uint8 / 255."""
    ref = reference(case)
    return (
        ref["source_uint8"][None].astype(np.float32) / 255,
        ref["driving_uint8"].astype(np.float32) / 255,
    )


def reference_kp(ref, name):
    """``{'value', 'jacobian'}`` of the reference's keypoints ``name`` (e.g. ``source``,
    ``driving``, ``norm_rel_adapt``: ``kp_norm_value_rel_adapt``, ...)."""
    head, _, mode = name.partition("_")
    suffix = f"_{mode}" if mode else ""
    return {key: ref[f"kp_{head}_{key}{suffix}"] for key in ("value", "jacobian")}


def process_kp_inputs(kp_source, kp_driving, kp_initial, relative=1.0, adapt=1.0):
    """process_kp's inputs from three ``{'value', 'jacobian'}`` keypoint sets and the flags
    (the jacobian follows the movement, as with the scripts' --relative)."""
    from modules.app.pipeline import named

    return {
        **named("source", kp_source),
        **named("driving", kp_driving),
        **named("initial", kp_initial),
        "use_relative_movement": relative,
        "use_relative_jacobian": relative,
        "adapt_movement_scale": adapt,
    }


def reference_process_kp_inputs(ref, relative=1.0, adapt=1.0):
    """process_kp's inputs for the reference's driving keypoints, starting from frame 0."""
    driving = reference_kp(ref, "driving")
    initial = {k: v[:1] for k, v in driving.items()}
    return process_kp_inputs(reference_kp(ref, "source"), driving, initial, relative, adapt)


def generator_inputs(ref, source, mode="rel_adapt"):
    """The generator's inputs for the reference's normalized keypoints of ``mode``."""
    from modules.app.pipeline import named

    return {
        "source_image": source,
        **named("source", reference_kp(ref, "source")),
        **named("driving", reference_kp(ref, f"norm_{mode}")),
    }


def tiny_flags(case, checkpoint_case=None):
    """--model/--config/--checkpoint of a tiny case (the checkpoint of ``checkpoint_case``
    when given)."""
    return [
        "--model",
        case,
        "--config",
        str(config_path(case)),
        "--checkpoint",
        str(checkpoint_path(checkpoint_case or case)),
    ]


@functools.cache
def tiny_model(case):
    from modules import load_model

    return load_model(config_path(case), checkpoint_path(case))


def assert_close(name, got, want, tol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != reference {want.shape}"
    diff = float(np.max(np.abs(got.astype(np.float64) - want)))
    assert diff <= tol, f"{name}: max abs difference {diff:.3g} > {tol:g}"


TARGETS = ("keras", "savedmodel", "tflite", "onnx")


def build(case, root, *flags):
    """Runs build.py for a tiny case into ``root`` (saved_models/, tflite/, onnx/, tfjs/ below
    it)."""
    import build as build_script

    build_script.main(
        [
            *tiny_flags(case),
            "--saved_models",
            str(root / "saved_models"),
            "--tflite",
            str(root / "tflite"),
            "--onnx_dir",
            str(root / "onnx"),
            "--tfjs_dir",
            str(root / "tfjs"),
            *flags,
        ]
    )


# The scripts (run.py, test.py, testlite.py) on the tiny models


def demo(case):
    return FIXTURES / case / "demo"


def demo_flags(case="tiny-vox"):
    """--source_image and --driving_video of a case's demo inputs."""
    return ["--source_image", str(demo(case) / "source.png")] + [
        "--driving_video",
        str(demo(case) / "driving.mp4"),
    ]


def model_args(script, case, built):
    """The flags that point a script at a tiny model."""
    if script == "run.py":
        return tiny_flags(case)
    if script == "test.py":
        return ["--model", case, "--saved_models", str(built(case) / "saved_models")]
    return ["--model", case, "--tflite", str(built(case) / "tflite")]


def main_of(script):
    return importlib.import_module(script[:-3]).main


def run_in_process(script, args):
    """Runs a script's main() in this process (saves TensorFlow's start-up per run)."""
    try:
        code = main_of(script)(args)
    except SystemExit as exit:
        code = exit.code
    assert code in (0, None), f"{script} {' '.join(args)} exited with {code}"


def run_build(*args, cwd=None):
    """build.py in a child process."""
    return run_script("build.py", *args, cwd=cwd)


def run_script(script, *args, **kwargs):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, script), *args],
        capture_output=True,
        text=True,
        **kwargs,
    )


def read_frames(folder):
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    return np.stack([imageio.imread(os.path.join(folder, n)) for n in names])


def long_video(path, frames=600):
    """The tiny demo's driving video (8 frames of 320x240) repeated to ``frames`` frames."""
    from modules.app.video_writer import VideoWriter

    source = imageio.mimread(demo("tiny-vox") / "driving.mp4")
    with VideoWriter(path, 25) as writer:
        for i in range(frames):
            writer.append(source[i % len(source)])
    return str(path)


def tiny_run(tmp_path, *flags, driving=None, output=None):
    """run.py on the tiny vox model and its demo inputs; returns the output path."""
    output = output or tmp_path / "out.mp4"
    run_in_process(
        "run.py",
        [
            *model_args("run.py", "tiny-vox", None),
            "--source_image",
            str(demo("tiny-vox") / "source.png"),
            "--driving_video",
            str(driving or demo("tiny-vox") / "driving.mp4"),
            "--output",
            str(output),
            *flags,
        ],
    )
    return output


# Child processes measured, and files that only declare a size


# A fresh, small parent: a child's peak RSS (ru_maxrss) starts at its parent's RSS at fork,
# which for pytest with TensorFlow loaded is about 1 GB; this one's is 10 MB.
MEASURE = (
    "import json, os, subprocess, sys; process = subprocess.Popen(sys.argv[1:]); "
    "_, status, usage = os.wait4(process.pid, 0); print(json.dumps([os.waitstatus_to_exitcode"
    "(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime]))"
)


def measured_run(command, stderr):
    """(exit code, peak resident KiB, CPU seconds) of ``command``; its stderr to ``stderr``
    (a file), its stdout dropped."""
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    return tuple(json.loads(result.stdout.strip().splitlines()[-1]))


def png_header_only(path, width, height):
    """A PNG that declares width x height pixels and holds none (a decompression bomb's
    header): only its header can be read."""

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return str(path)
