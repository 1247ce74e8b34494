"""run.py, test.py and testlite.py end to end: real files in, real video files out.

demo.py's final frames (tests/fixtures/*/demo/expected.npz) are reproduced within 1 level by
all three scripts; bad input gives one line and exit code 2; outputs are never half-written.
"""

import os
import signal
import subprocess
import sys
import time

import imageio.v2 as imageio
import numpy as np
import pytest
from conftest import CASES, FIXTURES, checkpoint_path, config_path

from modules.app.probe import count_frames, ffmpeg_exe, has_audio, video_stream_info
from modules.app.video import VideoWriter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_MODES = {
    "frames_abs": [],
    "frames_rel_adapt": ["--relative", "--adapt_scale"],
    "frames_rel_adapt_best3": ["--relative", "--adapt_scale", "--best_frame", "3"],
}


def demo(case):
    return FIXTURES / case / "demo"


def model_args(script, case, built):
    """The flags that point a script at a tiny model."""
    if script == "run.py":
        return [
            "--model",
            case,
            "--config",
            str(config_path(case)),
            "--checkpoint",
            str(checkpoint_path(case)),
        ]
    if script == "test.py":
        return ["--model", case, "--saved_models", str(built(case) / "saved_models")]
    return ["--model", case, "--tflite", str(built(case) / "tflite")]


def main_of(script):
    import importlib

    return importlib.import_module(script[:-3]).main


def run_in_process(script, args):
    """Runs a script's main() in this process (saves TensorFlow's start-up per run)."""
    try:
        code = main_of(script)(args)
    except SystemExit as exit:
        code = exit.code
    assert code in (0, None), f"{script} {' '.join(args)} exited with {code}"


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


@pytest.mark.parametrize("script", ["run.py", "test.py", "testlite.py"])
@pytest.mark.parametrize("case", CASES)
def test_demo_frames_within_one_level(tmp_path, built, script, case):
    expected = np.load(demo(case) / "expected.npz")
    for mode, flags in DEMO_MODES.items():
        for batch_size in ("1", "3"):
            out = tmp_path / f"{mode}-{batch_size}"
            run_in_process(
                script,
                [
                    *model_args(script, case, built),
                    "--source_image",
                    str(demo(case) / "source.png"),
                    "--driving_video",
                    str(demo(case) / "driving.mp4"),
                    "--output",
                    f"{out}/",
                    "--batch_size",
                    batch_size,
                    *flags,
                ],
            )
            frames = read_frames(out)
            assert frames.shape == expected[mode].shape, mode
            diff = np.abs(frames.astype(int) - expected[mode]).max()
            assert diff <= 1, f"{script} {mode} batch {batch_size}: {diff} levels off"


def tiny_run(tmp_path, *flags, driving=None, output=None):
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


def test_audio_is_copied_and_every_frame_kept(tmp_path):
    out = tiny_run(tmp_path, "--audio", "--relative")
    info = video_stream_info(out)
    assert info["audio"] is not None and info["video"]["fps"] == 25
    assert count_frames(out) == count_frames(demo("tiny-vox") / "driving.mp4") == 8


def test_frames_cuts_video_and_audio(tmp_path):
    out = tiny_run(tmp_path, "--audio", "--frames", "5")
    assert count_frames(out) == 5
    assert has_audio(out) and video_stream_info(out)["duration"] <= 5 / 25 + 0.05


def test_driving_video_without_audio_warns(tmp_path):
    silent = tmp_path / "silent.mp4"
    with VideoWriter(silent, 25) as writer:
        for frame in imageio.mimread(demo("tiny-vox") / "driving.mp4"):
            writer.append(frame)
    out = tmp_path / "out.mp4"
    result = run_script(
        "run.py",
        *model_args("run.py", "tiny-vox", None),
        "--audio",
        "--driving_video",
        str(silent),
        "--output",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert f"warning: No audio added: '{silent}' has no audio track." in result.stderr
    assert count_frames(out) == 8 and not has_audio(out)


@pytest.mark.parametrize("extension", [".gif", ".webm"])
def test_other_containers(tmp_path, extension):
    out = tiny_run(tmp_path, output=tmp_path / f"out{extension}")
    assert count_frames(out) == 8


def test_side_by_side_shows_three_panels(tmp_path):
    out = tiny_run(tmp_path, "--side_by_side", "--relative", output=f"{tmp_path}/frames/")
    frames = read_frames(out)
    assert frames.shape == (8, 256, 3 * 256, 3)
    plain = read_frames(tiny_run(tmp_path, "--relative", output=f"{tmp_path}/plain/"))
    # the result panel is the animation, except where keypoints are drawn on it
    assert np.mean(frames[:, :, 512:] == plain) > 0.95


def test_find_best_frame_uses_the_frame_it_reports(tmp_path, capsys):
    found = read_frames(
        tiny_run(tmp_path, "--relative", "--find_best_frame", output=f"{tmp_path}/found/")
    )
    best = int(capsys.readouterr().out.split("Best frame: ")[1].split()[0])
    assert 0 <= best < 8
    given = read_frames(
        tiny_run(tmp_path, "--relative", "--best_frame", str(best), output=f"{tmp_path}/given/")
    )
    np.testing.assert_array_equal(found, given)


def make_video(path, frames, audio=False):
    """A driving video of ``frames`` frames: the fixture's frames, looped."""
    source = imageio.mimread(demo("tiny-vox") / "driving.mp4")
    with VideoWriter(path, 25, audio_from=demo("tiny-vox") / "driving.mp4" if audio else None) as w:
        for i in range(frames):
            w.append(source[i % len(source)])
    return path


def peak_rss_kib(args):
    """Peak RSS of a child process (a fresh process per call, so the maximum is its own)."""
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def test_memory_does_not_grow_with_video_length(tmp_path):
    short = make_video(tmp_path / "short.mp4", 16)
    long = make_video(tmp_path / "long.mp4", 400)
    base = [
        sys.executable,
        os.path.join(ROOT, "run.py"),
        *model_args("run.py", "tiny-vox", None),
        "--source_image",
        str(demo("tiny-vox") / "source.png"),
    ]
    rss_short = peak_rss_kib(
        [*base, "--driving_video", str(short), "--output", str(tmp_path / "s.mp4")]
    )
    rss_long = peak_rss_kib(
        [*base, "--driving_video", str(long), "--output", str(tmp_path / "l.mp4")]
    )
    print(f"\npeak RSS: 16 frames {rss_short / 1024:.0f} MiB, 400 frames {rss_long / 1024:.0f} MiB")
    # 384 more frames held in memory would be 384 x 256 x 256 x 3 x 4 bytes = 290 MiB
    assert rss_long - rss_short < 40 * 1024
    assert count_frames(tmp_path / "l.mp4") == 400


def test_ctrl_c_leaves_no_partial_file_and_keeps_the_old_output(tmp_path):
    long = make_video(tmp_path / "long.mp4", 600)
    out = tmp_path / "result.mp4"
    out.write_bytes(b"the previous result")
    process = subprocess.Popen(
        [
            sys.executable,
            os.path.join(ROOT, "run.py"),
            *model_args("run.py", "tiny-vox", None),
            "--driving_video",
            str(long),
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not any(".tmp-" in n for n in os.listdir(tmp_path)):
        time.sleep(0.2)
    time.sleep(2)  # well into the animation
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert out.read_bytes() == b"the previous result"
    assert sorted(os.listdir(tmp_path)) == ["long.mp4", "result.mp4"]


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


@pytest.mark.parametrize("script", ["run.py", "test.py", "testlite.py"])
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
                "--model",
                "tiny-vox",
                "--config",
                str(config_path("tiny-vox")),
                "--checkpoint",
                str(checkpoint_path("tiny-mgif")),
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


def test_default_command_has_its_inputs(tmp_path):
    """The README's smoke run: the default example/ inputs with the small test model."""
    result = run_script(
        "run.py",
        *model_args("run.py", "tiny-vox", None),
        "--frames",
        "12",
        "--relative",
        "--adapt_scale",
        "--audio",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "12 frames in" in result.stdout and "-> result.mp4" in result.stdout
    assert count_frames(tmp_path / "result.mp4") == 12 and has_audio(tmp_path / "result.mp4")
