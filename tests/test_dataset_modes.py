"""--mode reconstruction and --mode animate end to end against the original's own outputs
(tests/fixtures/tiny-vox/dataset/expected): strips within 1 level, the reconstruction loss within
1e-5; on a real local Ray cluster with 2 workers the outputs equal the serial run's; --resume,
and per-video failures."""

import csv
import json
import os
import shutil

import imageio.v2 as imageio
import numpy as np
import pytest
from helpers import FIXTURES, main_of, model_args

from modules.app.probe import count_frames

DATASET = FIXTURES / "tiny-vox" / "dataset"
EXPECTED = DATASET / "expected"
CONFIG = DATASET / "config.yaml"
COLUMNS = {"reconstruction": 5, "animation": 6}  # the Visualizer's columns per mode

pytestmark = pytest.mark.slow


def run_mode(script, built, *args):
    flags = model_args(script, "tiny-vox", built)
    if script == "run.py":
        flags[flags.index("--config") + 1] = str(CONFIG)
    else:
        flags += ["--mode_config", str(CONFIG)]
    try:
        return main_of(script)([*flags, *args])
    except SystemExit as exit:
        return exit.code


def printed_loss(text):
    (line,) = [ln for ln in text.splitlines() if ln.startswith("Reconstruction loss: ")]
    return float(line.split(": ")[1])


def assert_strips_match(folder, mode, names=None):
    expected = sorted(os.listdir(EXPECTED / mode / "png"))
    names = names or expected
    assert sorted(os.listdir(folder / mode / "png")) == sorted(names)
    for name in names:
        got = imageio.imread(folder / mode / "png" / name)
        want = imageio.imread(EXPECTED / mode / "png" / name)
        assert got.shape == want.shape, name
        diff = np.abs(got.astype(int) - want).max()
        assert diff <= 1, f"{mode}/{name}: {diff} levels off"
        video = folder / mode / (name[: -len(".png")] + ".mp4")
        assert count_frames(video) == want.shape[1] // 256, video
        assert imageio.get_reader(video).get_meta_data()["size"] == (COLUMNS[mode] * 256, 256)


@pytest.mark.parametrize("script", ["run.py", "test.py", "testlite.py"])
def test_modes_match_the_original(tmp_path, built, capsys, script):
    out = tmp_path / "out"
    assert run_mode(script, built, "--mode", "reconstruction", "--output", str(out)) == 0
    text = capsys.readouterr().out
    want = json.loads((EXPECTED / "metrics.json").read_text())["reconstruction_loss"]
    assert abs(printed_loss(text) - want) <= 1e-5
    assert_strips_match(out, "reconstruction")
    with open(out / "reconstruction" / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["name"], int(r["frames"])) for r in rows] == [
        ("a-clip.mp4", 6),
        ("b-frames", 5),
        ("c-loop.gif", 3),
        ("d-strip.png", 3),
    ]
    frames = np.array([int(r["frames"]) for r in rows])
    l1 = np.array([float(r["l1"]) for r in rows])
    assert abs((frames * l1).sum() / frames.sum() - want) <= 1e-5

    assert run_mode(script, built, "--mode", "animate", "--output", str(out)) == 0
    assert_strips_match(out, "animation")


def broken_dataset(tmp_path):
    """The fixture's test videos plus a damaged video and one of the wrong frame size."""
    data = tmp_path / "data"
    shutil.copytree(DATASET / "data" / "test", data)
    (data / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 damaged")
    imageio.imwrite(data / "small.png", np.zeros((128, 384, 3), np.uint8))
    return data


def test_failures_are_reported_by_name_and_the_rest_done(tmp_path, capsys):
    out = tmp_path / "out"
    code = run_mode(
        "run.py", None, "--mode", "reconstruction", "--dataset", str(broken_dataset(tmp_path)),
        "--output", str(out),
    )  # fmt: skip
    assert code == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    tail = captured.err.split("2 failed:")[1].strip().splitlines()
    assert [line.split(":")[0].strip() for line in tail] == ["broken.mp4", "small.png"]
    assert "small.png" in tail[1] and "strip" in tail[1]
    assert_strips_match(out, "reconstruction")
    want = json.loads((EXPECTED / "metrics.json").read_text())["reconstruction_loss"]
    assert abs(printed_loss(captured.out) - want) <= 1e-5


def test_resume_does_only_what_is_missing(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_mode("run.py", None, "--mode", "reconstruction", "--output", str(out)) == 0
    first = printed_loss(capsys.readouterr().out)
    png = out / "reconstruction" / "png"
    os.remove(png / "c-loop.gif.png")
    kept = {name: os.stat(png / name).st_mtime_ns for name in os.listdir(png)}
    args = ("--mode", "reconstruction", "--output", str(out), "--resume")
    assert run_mode("run.py", None, *args) == 0
    text = capsys.readouterr().out
    assert "--resume: 3 of 4 already done" in text and "1 of 1 reconstruction jobs" in text
    assert printed_loss(text) == first
    assert {name: os.stat(png / name).st_mtime_ns for name in kept} == kept
    assert_strips_match(out, "reconstruction")


def test_ray_two_workers_equal_the_serial_run(tmp_path, capsys):
    """A real local Ray cluster with 2 workers: the same files as the serial run, byte for
    byte, the same loss, and a failing video reported by name with the rest done."""
    pytest.importorskip("ray", reason="Ray is in requirements.txt; install it to run this test")
    data = broken_dataset(tmp_path)
    serial, ray = tmp_path / "serial", tmp_path / "ray"
    common = ("--mode", "reconstruction", "--dataset", str(data))
    assert run_mode("run.py", None, *common, "--output", str(serial)) == 1
    serial_text = capsys.readouterr().out
    code = run_mode("run.py", None, *common, "--output", str(ray), "--ray", "--workers", "2")
    assert code == 1
    captured = capsys.readouterr()
    assert "2 Ray workers" in captured.out
    assert printed_loss(captured.out) == printed_loss(serial_text)
    assert "broken.mp4" in captured.err.split("failed:")[-1]
    png = sorted(os.listdir(serial / "reconstruction" / "png"))
    assert png == sorted(os.listdir(ray / "reconstruction" / "png")) and len(png) == 4
    for name in png:
        a = imageio.imread(serial / "reconstruction" / "png" / name)
        b = imageio.imread(ray / "reconstruction" / "png" / name)
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert (serial / "reconstruction" / "losses.csv").read_text() == (
        ray / "reconstruction" / "losses.csv"
    ).read_text()
