"""run.py, test.py and testlite.py on bad input: one line on stderr, exit code 2, no
traceback, and the existing output kept."""

import os
import subprocess

import pytest
from helpers import checkpoint_path, demo, model_args, run_script, tiny_flags

from modules.app.probe import ffmpeg_exe


def write(path, data):
    path.write_bytes(data)
    return str(path)


BAD_INPUTS = {
    "missing source": (["--source_image", "{tmp}/nope.png"], "not found: '{tmp}/nope.png'"),
    "source not an image": (["--source_image", "{text}"], "Cannot read image '{text}'"),
    "missing driving video": (["--driving_video", "{tmp}/nope.mp4"], "not found: '{tmp}/nope.mp4'"),
    "driving not a video": (["--driving_video", "{fake_mp4}"], "'{fake_mp4}'"),
    "video without frames": (["--driving_video", "{audio_only}"], "has no video stream"),
    "unknown output extension": (["--output", "{tmp}/out.xyz"], "unknown video extension '.xyz'"),
    "output is the driving video": (["--output", "{driving}"], "is the --driving_video"),
    "best and find best frame": (["--best_frame", "1", "--find_best_frame"], "give one of them"),
    "negative batch size": (["--batch_size", "0"], "--batch_size must be at least 1"),
    "best frame past --frames": (["--frames", "3", "--best_frame", "5"], "not among the first"),
    "unknown flag": (["--relativ"], "unrecognized arguments: --relativ"),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    audio_only = tmp / "audio_only.m4a"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "aac",
            str(audio_only),
        ],
        check=True,
    )
    return {
        "tmp": str(tmp),
        "text": write(tmp / "notes.png", b"not an image"),
        "fake_mp4": write(tmp / "image.mp4", (demo("tiny-vox") / "source.png").read_bytes()),
        "audio_only": str(audio_only),
        "driving": str(demo("tiny-vox") / "driving.mp4"),
    }


# The checks are the scripts' shared command line: run.py in the fast tier, all three in the slow.
@pytest.mark.parametrize(
    "script",
    ["run.py", *(pytest.param(s, marks=pytest.mark.slow) for s in ("test.py", "testlite.py"))],
)
@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_keeps_output(tmp_path, bad_files, script, name):
    flags, message = BAD_INPUTS[name]
    out = tmp_path / "existing.mp4"
    out.write_bytes(b"keep me")
    args = [
        "--output",
        str(out),
        "--driving_video",
        bad_files["driving"],
        *[f.format(**bad_files) for f in flags],
    ]
    result = run_script(script, "--model", "tiny-vox", *args)
    assert result.returncode == 2
    assert message.format(**bad_files) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert out.read_bytes() == b"keep me"


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, flags, message",
    [
        ("run.py", ["--model", "vox", "--checkpoint", "missing.pth.tar"], "checkpoint not found"),
        (
            "run.py",
            [
                "--model",
                "vox",
                "--config",
                "nope.yaml",
                "--checkpoint",
                str(checkpoint_path("tiny-vox")),
            ],
            "config file not found: nope.yaml",
        ),
        (
            "run.py",
            [
                *tiny_flags("tiny-vox", "tiny-mgif"),
            ],
            "jacobian.weight has shape [4, 11, 7, 7] in the checkpoint but the config gives "
            "[40, 11, 7, 7]",
        ),
        (
            "test.py",
            ["--model", "vox", "--saved_models", "{tmp}"],
            "no SavedModels for model 'vox' in {tmp}; build them with: python build.py --model vox",
        ),
        (
            "testlite.py",
            ["--model", "vox", "--tflite", "{tmp}", "--quantize", "dynamic"],
            "build them with: python build.py --model vox --quantize dynamic",
        ),
    ],
)
def test_missing_or_wrong_model_files(tmp_path, script, flags, message):
    out = tmp_path / "existing.mp4"
    out.write_bytes(b"keep me")
    flags = [f.format(tmp=tmp_path) for f in flags]
    result = run_script(script, *flags, "--output", str(out))
    assert result.returncode == 2
    assert message.format(tmp=tmp_path) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"keep me"


@pytest.mark.slow
def test_best_frame_past_the_end_of_the_video(tmp_path):
    out = tmp_path / "existing.mp4"
    out.write_bytes(b"keep me")
    result = run_script(
        "run.py",
        *model_args("run.py", "tiny-vox", None),
        "--best_frame",
        "50",
        "--driving_video",
        str(demo("tiny-vox") / "driving.mp4"),
        "--output",
        str(out),
    )
    assert result.returncode == 2 and "--best_frame 50 is past the end" in result.stderr
    assert "Traceback" not in result.stderr
    assert out.read_bytes() == b"keep me" and os.listdir(tmp_path) == ["existing.mp4"]
