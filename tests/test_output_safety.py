"""Outputs on real processes and real file systems: a folder of the user's own frames is not
overwritten without --overwrite and never emptied, a full disk is one line that keeps the old
output, and a closed stdout does not fail a finished run."""

import os

import imageio
from helpers import demo, run_script, tiny_flags

INPUTS = [
    "--source_image",
    str(demo("tiny-vox") / "source.png"),
    "--driving_video",
    str(demo("tiny-vox") / "driving.mp4"),
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
