"""live.py's bad input: one line, exit 2, no traceback, nothing written earlier lost."""

import json
import os
import socket
import time

import pytest
from helpers import demo
from live_session import CASE, Live, free_port, live_args, publisher, run_live, stop


def one_line_error(code, err, *words):
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], err
    return lines[0]


@pytest.mark.parametrize(
    "camera, words",
    [
        ("ftp://127.0.0.1/x", ("unsupported URL scheme 'ftp://'",)),
        ("/dev/video99", ("camera not found", "/dev/video99")),
        ("missing.mp4", ("not found", "missing.mp4")),
    ],
)
def test_unsupported_or_missing_camera(built, tmp_path, camera, words):
    code, _, err = run_live(built, tmp_path, "--camera", camera)
    one_line_error(code, err, *words)


def test_a_fifo_is_no_camera(built, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err = run_live(built, tmp_path, "--camera", str(fifo))
    one_line_error(code, err, "not a regular file")


def test_unsupported_stream_url(built, tmp_path):
    video = demo(CASE) / "driving.mp4"
    code, _, err = run_live(built, tmp_path, "--camera", str(video), "--stream_to", "ftp://x/y")
    one_line_error(code, err, "--stream_to", "unsupported URL scheme")


def test_port_in_use_keeps_an_existing_output(built, tmp_path):
    output = tmp_path / "old.mp4"
    output.write_bytes(b"earlier")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        video = str(demo(CASE) / "driving.mp4")
        code, _, err = run_live(
            built, tmp_path, "--camera", video, "--serve", str(port), "--output", str(output)
        )
    one_line_error(code, err, f"--serve {port}", "choose another port")
    assert output.read_bytes() == b"earlier"


@pytest.mark.parametrize(
    "name, words",
    [
        ("motion.txt", ("--save_motion", "an .npz file")),
        ("taken.npz", ("is a folder",)),
        ("notes/motion.npz", ("is not a folder", "Choose another output path")),
        ("same.npz", ("--stats and --save_motion name the same file",)),
    ],
)
def test_bad_save_motion_path_before_the_camera_opens(built, tmp_path, name, words):
    (tmp_path / "taken.npz").mkdir()
    (tmp_path / "notes").write_text("earlier")
    video = str(demo(CASE) / "driving.mp4")
    flags = ["--camera", video, "--save_motion", str(tmp_path / name)]
    code, _, err = run_live(built, tmp_path, *flags, "--stats", str(tmp_path / "same.npz"))
    one_line_error(code, err, *words)
    assert "opening camera" not in err
    assert (tmp_path / "notes").read_text() == "earlier"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["refused", "not a video"])
def test_a_camera_that_cannot_be_opened(built, tmp_path, kind):
    if kind == "refused":
        camera = f"tcp://127.0.0.1:{free_port()}"
    else:
        camera = str(tmp_path / "notes.mp4")
        (tmp_path / "notes.mp4").write_text("not a video\n")
    code, _, err = run_live(built, tmp_path, "--camera", camera, "--camera_timeout", "5")
    one_line_error(code, err, "cannot open camera", camera)


@pytest.mark.slow
def test_a_stream_that_stalls_ends_with_the_recording_kept(built, tmp_path):
    """The publisher stops after a few results: --camera_timeout later, one line and exit 2;
    the recording so far is in place and playable, the stats written."""
    from modules.app.probe import count_frames

    port = free_port(socket.SOCK_DGRAM)
    output, stats_path = tmp_path / "rec.mp4", tmp_path / "stats.json"
    args = ["--camera", f"udp://127.0.0.1:{port}", "--camera_timeout", "2", "--serve", "0"]
    live = Live(
        tmp_path, live_args(built, *args, "--output", str(output), "--stats", str(stats_path))
    )
    sender = None
    try:
        live.wait_for("opening camera")
        time.sleep(0.5)
        sender = publisher(port)
        live.wait_for_results(2)
        stop(sender)
        code, _, err = live.finish()
    finally:
        live.kill()
        if sender is not None:
            stop(sender)
    line = one_line_error(code, err, f"camera 'udp://127.0.0.1:{port}'", "--camera_timeout")
    assert "sent no frame for 2 s" in line
    stats = json.loads(stats_path.read_text())
    assert count_frames(output) == stats["frames_out"] >= 2
