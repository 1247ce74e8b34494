"""The dataset modes under awkward input: output names that two pairs would share, a pairs CSV
with a byte order mark, a video whose output cannot be written, long videos' memory, and
signals to a --ray run."""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from helpers import FIXTURES, ROOT, checkpoint_path

from modules.app.dataset import read_pairs
from modules.app.output_names import NAME_MAX, pair_name, video_name

DATASET = FIXTURES / "tiny-vox" / "dataset"
FRAMES = DATASET / "data" / "test" / "b-frames"
EXTENSIONS = (".png", ".mp4")


def run_mode(*args):
    import run

    try:
        return run.main(
            [
                "--model", "tiny-vox", "--config", str(DATASET / "config.yaml"),
                "--checkpoint", str(checkpoint_path("tiny-vox")), *args,
            ]
        )  # fmt: skip
    except SystemExit as exit:
        return exit.code


def test_pair_names_are_the_originals_unless_two_pairs_share_one():
    videos = ["a-clip.mp4", "b-frames", "x", "x-y", "y-z", "z"]
    assert pair_name("b-frames", "a-clip.mp4", videos, EXTENSIONS) == "a-clip.mp4-b-frames"
    first = pair_name("z", "x-y", videos, EXTENSIONS)
    second = pair_name("y-z", "x", videos, EXTENSIONS)
    assert first != second
    assert first.startswith("x-y-z~") and second.startswith("x-y-z~")
    # without y-z in the dataset, x-y driving z has one reading: the original's name
    assert pair_name("z", "x-y", ["x", "x-y", "z"], EXTENSIONS) == "x-y-z"


def test_names_too_long_for_the_file_system_are_shortened_apart():
    a, b = "a" * 240 + "1.mp4", "a" * 240 + "2.mp4"
    assert video_name(a, EXTENSIONS) == a  # 245 + 4 bytes fit
    first, second = pair_name(a, b, [a, b], EXTENSIONS), pair_name(b, a, [a, b], EXTENSIONS)
    assert first != second
    assert all(len(n.encode()) + 4 <= NAME_MAX for n in (first, second))
    long = "é" * 200 + ".mp4"  # 404 bytes
    assert len(video_name(long, EXTENSIONS).encode()) + 4 <= NAME_MAX


def test_pairs_csv_with_a_byte_order_mark(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_bytes("source,driving\r\nx,y\r\n".encode("utf-8-sig"))
    assert read_pairs(str(pairs), ["x", "y"]) == [("x", "y")]


def frames_dataset(tmp_path, names):
    data = tmp_path / "data"
    for name in names:
        shutil.copytree(FRAMES, data / name)
    return data


@pytest.mark.slow
def test_pairs_that_share_the_original_name_get_their_own_outputs(tmp_path, capsys):
    data = frames_dataset(tmp_path, ["x", "x-y", "y-z", "z"])
    out = tmp_path / "out"
    first, second, both = (tmp_path / f"{n}.csv" for n in ("first", "second", "both"))
    first.write_text("source,driving\nz,x-y\n")
    second.write_text("source,driving\ny-z,x\n")
    both.write_text("source,driving\nz,x-y\ny-z,x\n")
    common = ("--mode", "animate", "--dataset", str(data), "--output", str(out))
    assert run_mode(*common, "--pairs", str(first)) == 0
    # the second pair is not the first's output: --resume runs it
    assert run_mode(*common, "--pairs", str(second), "--resume") == 0
    assert "1 of 1 animation jobs" in capsys.readouterr().out
    png = sorted(os.listdir(out / "animation" / "png"))
    assert len(png) == 2 and all(n.startswith("x-y-z~") for n in png)
    assert run_mode(*common, "--pairs", str(both), "--resume") == 0
    assert "--resume: 2 of 2 already done" in capsys.readouterr().out


@pytest.mark.slow
def test_a_video_whose_output_cannot_be_written_fails_alone(tmp_path, capsys):
    long = "v" * 236 + ".gif"  # a legal name; its temporary beside the output may not be
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.gif", long, "c.gif"):
        shutil.copy(DATASET / "data" / "test" / "c-loop.gif", data / name)
    out = tmp_path / "out"
    # a folder where a.gif's strip goes: its write fails whatever the file system allows
    os.makedirs(out / "reconstruction" / "png" / "a.gif.png")
    code = run_mode("--mode", "reconstruction", "--dataset", str(data), "--output", str(out))
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "failed: a.gif: cannot write its output" in err
    png = set(os.listdir(out / "reconstruction" / "png"))
    assert "c.gif.png" in png
    # the long name is done, or (where the temporary's name is too long) its own failure
    assert f"{long}.png" in png or f"failed: {long}: " in err


def long_dataset(folder, frames=400):
    """One 256x256 video of ``frames`` frames (the fixture's a-clip.mp4 repeated)."""
    import imageio.v2 as imageio

    from modules.app.video_writer import VideoWriter

    clip = imageio.mimread(DATASET / "data" / "test" / "a-clip.mp4")
    folder.mkdir()
    with VideoWriter(str(folder / "long.mp4"), 25) as writer:
        for i in range(frames):
            writer.append(clip[i % len(clip)])
    return folder


def start_mode(data, out, tmp, *flags):
    """run.py --mode reconstruction in its own session, with its own TMPDIR (short: Ray puts
    its sockets there)."""
    env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [
            sys.executable, str(ROOT / "run.py"), "--model", "tiny-vox",
            "--config", str(DATASET / "config.yaml"),
            "--checkpoint", str(checkpoint_path("tiny-vox")),
            "--mode", "reconstruction", "--dataset", str(data), "--output", str(out), *flags,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip


def scratch_folders(tmp):
    return [n for n in os.listdir(tmp) if n.startswith("fomm-visualization-")]


def wait_for_a_job(process, tmp, seconds=240):
    """Until a job is under way (its scratch folder exists)."""
    deadline = time.time() + seconds
    while time.time() < deadline and process.poll() is None:
        if scratch_folders(tmp):
            time.sleep(1)  # well into the job
            return
        time.sleep(0.1)
    raise AssertionError(f"no job started; {process.communicate()}")


@pytest.fixture
def short_tmp():
    folder = tempfile.mkdtemp(prefix="fx", dir="/tmp")
    yield pathlib.Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_ends_a_ray_run_with_its_code_and_one_line(tmp_path, short_tmp, signum, code):
    pytest.importorskip("ray", reason="Ray is in requirements.txt; install it to run this test")
    data = long_dataset(tmp_path / "data")
    process = start_mode(data, tmp_path / "out", short_tmp, "--ray", "--workers", "1")
    wait_for_a_job(process, short_tmp)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.strip() and "video/s" not in ln]
    assert lines == [
        f"interrupted ({signal.Signals(signum).name}); nothing was written in place of "
        "existing files"
    ], err
    assert scratch_folders(short_tmp) == []


@pytest.mark.slow
def test_a_killed_runs_scratch_folder_goes_with_the_next_run(tmp_path, short_tmp):
    data = long_dataset(tmp_path / "data", frames=200)
    process = start_mode(data, tmp_path / "out", short_tmp)
    wait_for_a_job(process, short_tmp)
    process.kill()
    process.wait()
    assert len(scratch_folders(short_tmp)) == 1
    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(DATASET / "data" / "test" / "c-loop.gif", small)
    process = start_mode(small, tmp_path / "out2", short_tmp)
    _, err = process.communicate(timeout=240)
    assert process.returncode == 0, err
    assert scratch_folders(short_tmp) == []


@pytest.mark.parametrize("block_bytes", [1, 5000, 1 << 30])
def test_the_strip_file_is_the_frames_side_by_side(tmp_path, block_bytes):
    import imageio.v3 as iio

    from modules.app.strip import StripFile

    rng = np.random.default_rng(0)
    smooth = np.linspace(0, 255, 7 * 9 * 3).reshape(7, 9, 3).astype(np.uint8)
    frames = [rng.integers(0, 256, (2, 7, 9, 3), np.uint8), smooth[None], smooth[None] // 2]
    with StripFile(str(tmp_path / "strip.raw"), block_bytes) as strip:
        for batch in frames:
            strip.append(batch)
        png = strip.png()
    want = np.concatenate(list(np.concatenate(frames)), axis=1)
    np.testing.assert_array_equal(iio.imread(png, extension=".png"), want)
    # the PNG encoder's size or less
    assert len(png) <= len(iio.imwrite("<bytes>", want, extension=".png")) * 1.05
