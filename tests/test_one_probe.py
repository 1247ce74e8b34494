"""The driving video is probed once a run: one ``ffmpeg -i`` and one decoder for the
animation, besides the damage check's two passes and the audio mux. Counted on the real
ffmpeg, started through a script that logs each command line (IMAGEIO_FFMPEG_EXE)."""

import os
import stat
import subprocess
import sys

import imageio_ffmpeg
import pytest
from helpers import ROOT, demo, model_args


def logged_ffmpeg(tmp_path):
    log = tmp_path / "ffmpeg.log"
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(
        f'#!/bin/sh\necho "$*" >> {log}\nexec {imageio_ffmpeg.get_ffmpeg_exe()} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper, log


def ffmpeg_runs(tmp_path, script, args, *flags):
    wrapper, log = logged_ffmpeg(tmp_path)
    driving = str(demo("tiny-vox") / "driving.mp4")
    command = [sys.executable, str(ROOT / script), *args, "--driving_video", driving]
    command += ["--source_image", str(demo("tiny-vox") / "source.png"), *flags]
    env = dict(os.environ, IMAGEIO_FFMPEG_EXE=str(wrapper))
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in log.read_text().splitlines() if driving in line]
    probes = [line for line in lines if line.endswith(f" -i {driving}")]
    decoders = [line for line in lines if "image2pipe" in line]
    return probes, decoders, lines


def test_run_probes_and_decodes_the_driving_video_once(tmp_path):
    args = model_args("run.py", "tiny-vox", None)
    out = str(tmp_path / "out.mp4")
    probes, decoders, lines = ffmpeg_runs(tmp_path, "run.py", args, "--audio", "--output", out)
    assert len(probes) == 1 and len(decoders) == 1, lines
    # the damage check's stream copy and decode, and the audio mux: nothing else
    assert len(lines) == 5, lines


@pytest.mark.slow
def test_testlite_hands_its_probe_to_the_frame_process(tmp_path, built):
    """The child that decodes and resizes (the fixture's 320x240 frames need it) gets the
    parent's probe; the parent's own decoder, opened by the checks, is closed unused."""
    args = model_args("testlite.py", "tiny-vox", built)
    out = str(tmp_path / "out.mp4")
    probes, decoders, lines = ffmpeg_runs(tmp_path, "testlite.py", args, "--output", out)
    assert len(probes) == 1 and len(decoders) == 2, lines
