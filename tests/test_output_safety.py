"""Outputs on real processes and real file systems: a folder of the user's own frames is not
overwritten without --overwrite and never emptied, a full disk is one line that keeps the old
output, and a closed stdout does not fail a finished run."""

import os
import subprocess
import sys

import imageio
import numpy as np
import pytest
from helpers import ROOT, demo_flags, run_script, tiny_flags

from modules.app.probe import count_frames
from modules.app.video_writer import VideoWriter
from modules.errors import InputError

INPUTS = [
    *demo_flags(),
]


def user_frames(folder, count):
    folder.mkdir()
    for i in range(count):
        (folder / f"{i:06d}.png").write_bytes(b"user %d" % i)
    (folder / "notes.txt").write_text("mine")


def test_a_folder_of_frames_is_refused_before_the_model_loads(tmp_path):
    folder = tmp_path / "frames"
    user_frames(folder, 100)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    # The checkpoint is missing too: the output's error comes first, before model files.
    flags = tiny_flags("tiny-vox")
    flags[flags.index("--checkpoint") + 1] = str(tmp_path / "missing.pth.tar")
    result = run_script("run.py", *flags, *INPUTS, "--frames", "4", "--output", f"{folder}/")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "100 numbered PNG frame(s)" in result.stderr and "--overwrite" in result.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_overwrite_replaces_only_the_frames_written(tmp_path):
    folder = tmp_path / "frames"
    user_frames(folder, 100)
    result = run_script(
        "run.py", *tiny_flags("tiny-vox"), *INPUTS, "--frames", "4", "--overwrite",
        "--output", str(folder),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for i in range(4):
        assert imageio.v2.imread(folder / f"{i:06d}.png").shape[2] == 3
    for i in range(4, 100):
        assert (folder / f"{i:06d}.png").read_bytes() == b"user %d" % i
    assert (folder / "notes.txt").read_text() == "mine"
    assert len(os.listdir(folder)) == 101


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB file system (tmpfs), to fill up for real."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk, leave):
    """Fills ``disk`` up to ``leave`` bytes free."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave))


def noise(n, size=128):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n))


def temporaries(folder):
    return [n for n in os.listdir(folder) if ".tmp-" in n]


@pytest.mark.parametrize(
    "target, frames",
    [
        ("out.mp4", 40),  # ffmpeg fails while finishing the file (close)
        ("out.mp4", 400),  # ffmpeg ends while frames still come (a broken pipe)
        ("out.gif", 400),
        ("frames/", 40),  # a PNG frame cannot be written
    ],
)
def test_full_disk_is_one_error_and_keeps_the_old_output(small_disk, target, frames):
    old = small_disk / target.rstrip("/")
    if target.endswith("/"):
        old.mkdir()
        (old / "000000.png").write_bytes(b"old frame")
    else:
        old.write_bytes(b"old video")
    before = {p: p.read_bytes() for p in small_disk.rglob("*") if p.is_file()}
    with pytest.raises(InputError) as error:
        with VideoWriter(str(small_disk / target), 25, overwrite=True) as writer:
            for frame in noise(frames):
                writer.append(frame)
    assert str(error.value) == (
        f"Cannot write '{old}': no space left on device. Free space or choose another output path."
    )
    assert {p: p.read_bytes() for p in small_disk.rglob("*") if p.is_file()} == before
    assert temporaries(small_disk) == []


def test_full_disk_run_py(small_disk):
    """run.py: exit 2, one line after the progress bar, no ffmpeg messages, no traceback; the
    old output stays and no temporary is left."""
    out = small_disk / "result.mp4"
    out.write_bytes(b"old video")
    fill(small_disk, 4096)
    result = run_script("run.py", *tiny_flags("tiny-vox"), *INPUTS, "--output", str(out))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "No space left" not in result.stderr
    assert result.stderr.rstrip("\n").splitlines()[-1] == (
        f"error: Cannot write '{out}': no space left on device. Free space or choose another "
        f"output path."
    )
    assert out.read_bytes() == b"old video"
    assert temporaries(small_disk) == []


def test_closed_stdout(tmp_path):
    """run.py ... | head -0: the closing line has nowhere to go; the run still succeeds."""
    out = tmp_path / "out.mp4"
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the run prints anything
    try:
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "run.py"), *tiny_flags("tiny-vox"), *INPUTS]
            + ["--frames", "3", "--output", str(out)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Error" not in result.stderr
    assert count_frames(out) == 3
    assert temporaries(tmp_path) == []
