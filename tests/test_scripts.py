"""run.py, test.py and testlite.py end to end: real files in, real video files out.

demo.py's final frames (tests/fixtures/*/demo/expected.npz) are reproduced within 1 level by
all three scripts; outputs are never half-written (bad input: test_script_errors.py).
"""

import os
import signal
import subprocess
import sys
import time

import imageio.v2 as imageio
import numpy as np
import pytest
from helpers import (
    CASES,
    ROOT,
    checkpoint_path,
    config_path,
    demo,
    model_args,
    read_frames,
    run_in_process,
    run_script,
    tiny_run,
)

from modules.app.probe import count_frames, has_audio, video_stream_info
from modules.app.video_writer import VideoWriter

DEMO_MODES = {
    "frames_abs": [],
    "frames_rel_adapt": ["--relative", "--adapt_scale"],
    "frames_rel_adapt_best3": ["--relative", "--adapt_scale", "--best_frame", "3"],
}


# run.py pins the pipeline (modes, best frame, batching) in every combination; test.py and
# testlite.py differ only in their models, which test_networks pins in every mode, so one
# combination each (all flags, best frame, batch 3) checks they are wired to the pipeline.
DEMO_RUNS = {
    "run.py": [(mode, batch) for mode in DEMO_MODES for batch in ("1", "3")],
    "test.py": [("frames_rel_adapt_best3", "3")],
    "testlite.py": [("frames_rel_adapt_best3", "3")],
}


@pytest.mark.slow
@pytest.mark.parametrize("script", DEMO_RUNS)
@pytest.mark.parametrize("case", CASES)
def test_demo_frames_within_one_level(tmp_path, built, script, case):
    expected = np.load(demo(case) / "expected.npz")
    for mode, batch_size in DEMO_RUNS[script]:
        flags = DEMO_MODES[mode]
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


def test_audio_is_copied_and_every_frame_kept(tmp_path):
    out = tiny_run(tmp_path, "--audio", "--relative")
    info = video_stream_info(out)
    assert info["audio"] is not None and info["video"]["fps"] == 25
    assert count_frames(out) == count_frames(demo("tiny-vox") / "driving.mp4") == 8


@pytest.mark.slow
def test_frames_cuts_video_and_audio(tmp_path):
    out = tiny_run(tmp_path, "--audio", "--frames", "5")
    assert count_frames(out) == 5
    assert has_audio(out) and video_stream_info(out)["duration"] <= 5 / 25 + 0.05


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("extension", [".gif", ".webm"])
def test_other_containers(tmp_path, extension):
    out = tiny_run(tmp_path, output=tmp_path / f"out{extension}")
    assert count_frames(out) == 8


@pytest.mark.slow
def test_side_by_side_shows_three_panels(tmp_path):
    out = tiny_run(tmp_path, "--side_by_side", "--relative", output=f"{tmp_path}/frames/")
    frames = read_frames(out)
    assert frames.shape == (8, 256, 3 * 256, 3)
    plain = read_frames(tiny_run(tmp_path, "--relative", output=f"{tmp_path}/plain/"))
    # the result panel is the animation, except where keypoints are drawn on it
    assert np.mean(frames[:, :, 512:] == plain) > 0.95


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_no_dense_motion_gives_one_frame_per_driving_frame(tmp_path):
    """A generator without a dense motion network at batch 4: 8 driving frames give 8 equal
    frames (the source, unmoved), as the original's one prediction per driving frame."""
    import torch
    import yaml

    raw = yaml.safe_load(config_path("tiny-vox").read_text())
    del raw["model_params"]["generator_params"]["dense_motion_params"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    checkpoint = torch.load(checkpoint_path("tiny-vox"), map_location="cpu", weights_only=True)
    generator = checkpoint["generator"]
    for key in [k for k in generator if k.startswith("dense_motion_network.")]:
        del generator[key]
    torch.save(checkpoint, tmp_path / "still.pth.tar")
    args = [
        "--config",
        str(tmp_path / "config.yaml"),
        "--checkpoint",
        str(tmp_path / "still.pth.tar"),
    ]
    out = tiny_run(tmp_path, *args, "--batch_size", "4", output=f"{tmp_path}/frames/")
    frames = read_frames(out)
    assert len(frames) == count_frames(demo("tiny-vox") / "driving.mp4") == 8
    assert all(np.array_equal(frame, frames[0]) for frame in frames)


@pytest.mark.slow
@pytest.mark.parametrize("script", ["run.py", "test.py"])
def test_models_run_without_the_graph_optimizer_on_a_cpu(built, script):
    """run.py and test.py load their models with TensorFlow's graph optimizer off on a CPU
    (modules.runtime.skip_graph_optimizer: a shorter start); demo.py's frames are still
    reproduced (test_demo_frames_within_one_level)."""
    backend = {"run.py": "Keras", "test.py": "SavedModel"}[script]
    code = (
        "import argparse, sys; import tensorflow as tf; "
        "from modules.app import backends; "
        "args = argparse.Namespace(model='tiny-vox', config=sys.argv[-3], "
        "checkpoint=sys.argv[-2], loadwithtorch=False, precision='float32', "
        f"saved_models=sys.argv[-1]); backends.{backend}().load(args); "
        "print(tf.config.optimizer.get_experimental_options())"
    )
    saved = built("tiny-vox") / "saved_models"
    out = subprocess.run(
        [sys.executable, "-c", code, config_path("tiny-vox"), checkpoint_path("tiny-vox"), saved],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "'disable_meta_optimizer': True" in out.stdout
