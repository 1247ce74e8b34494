"""A damaged driving video is not used silently: a real copy of example/driving.mp4 with
bytes zeroed in the middle gives a warning naming the file and the frames affected, and
--strict makes it an error (exit 2) that writes nothing."""

import os
import subprocess
import sys

import numpy as np
import pytest

from modules.app.integrity import DecodeCheck

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "example", "driving.mp4")  # 100 frames, about 210 KB
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-vox")
MODEL = ["--model", "tiny-vox", "--config", os.path.join(TINY, "config.yaml")]
MODEL += ["--checkpoint", os.path.join(TINY, "tiny-vox-cpk.pth.tar")]


def damaged_copy(path, kib):
    data = bytearray(open(EXAMPLE, "rb").read())
    middle = len(data) // 2
    data[middle - kib * 512 : middle + kib * 512] = bytes(kib * 1024)
    path.write_bytes(bytes(data))
    return str(path)


def run(*args):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "run.py"), *MODEL, *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_decode_check_counts_what_imageio_hides(tmp_path):
    """imageio repeats frames to keep the rate and still yields 100; ffmpeg decodes fewer."""
    assert DecodeCheck(EXAMPLE).report() is None
    damaged = damaged_copy(tmp_path / "damaged.mp4", 20)
    report = DecodeCheck(damaged).report()
    assert report.startswith(f"'{damaged}' is damaged: ") and "of its 100 frames" in report
    affected = int(report.split(": ")[1].split()[0])
    assert 1 <= affected < 100


def test_decode_check_counts_concealed_frames(tmp_path):
    """Random bytes inside slices: every frame decodes, some with concealed errors (what a
    longer damaged video shows), and imageio would never say."""
    data = bytearray(open(EXAMPLE, "rb").read())
    rng = np.random.default_rng(5)
    for offset in rng.integers(2000, len(data) - 2000, 5):
        data[offset : offset + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
    path = tmp_path / "noisy.mp4"
    path.write_bytes(bytes(data))
    report = DecodeCheck(str(path)).report()
    assert report is not None and "0 could not be decoded" in report, report
    concealed = int(report.split("decoded, ")[1].split()[0])
    assert concealed >= 1, report


@pytest.mark.slow
def test_damaged_video_warns_and_strict_stops(tmp_path):
    damaged = damaged_copy(tmp_path / "damaged.mp4", 20)
    out = tmp_path / "result.mp4"
    result = run("--driving_video", damaged, "--output", str(out))
    assert result.returncode == 0, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1 and damaged in warnings[0] and "frames affected" in warnings[0]
    assert out.exists()

    out.write_bytes(b"the previous result")
    result = run("--driving_video", damaged, "--output", str(out), "--strict")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and damaged in lines[0]
    assert out.read_bytes() == b"the previous result"
    assert sorted(os.listdir(tmp_path)) == ["damaged.mp4", "result.mp4"]


@pytest.mark.slow
def test_200_kib_zeroed_leaves_no_frame(tmp_path):
    """The issue's damage (200 KB zeroed in the middle) leaves nothing of this small example
    that ffmpeg can decode: one line, exit 2."""
    damaged = damaged_copy(tmp_path / "zeroed.mp4", 200)
    result = run("--driving_video", damaged, "--output", str(tmp_path / "result.mp4"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and damaged in lines[0], result.stderr
