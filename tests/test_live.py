"""live.py on the tiny vox TF Lite models: real processes, real ffmpeg streams on 127.0.0.1,
real HTTP clients and a headless Chromium; no mocks (bad input: tests/test_live_errors.py).

A live result must equal testlite.py's frame for the same driving frame with the same
reference frame (docs/live.md): the live loop runs batch 1, testlite.py batch 4, and the TF
Lite models give the same pixels at both."""

import io
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import browser
import imageio.v2 as imageio
import numpy as np
import pytest
from helpers import ROOT, demo, read_frames
from live_session import (
    CASE,
    Live,
    batch_frames,
    camera_video,
    check_counts,
    ffmpeg,
    free_port,
    live_args,
    publisher,
    run_live,
    stop,
)

SCREENSHOT = ROOT / "docs" / "live.png"


@pytest.mark.slow
def test_file_camera_gives_testlites_frames(built, tmp_path):
    """A video file played as a camera: each result equals testlite.py's frame (its default
    batch of 4) for the camera frame it animates, the first camera frame the reference."""
    driving = demo(CASE) / "driving.mp4"
    flags = ("--relative", "--adapt_scale")
    code, out, err = run_live(
        built,
        tmp_path,
        "--camera",
        str(driving),
        "--output",
        f"{tmp_path / 'live'}/",
        "--stats",
        str(tmp_path / "stats.json"),
        *flags,
    )
    assert code == 0, err
    assert "8 camera frames" in out
    stats = json.loads((tmp_path / "stats.json").read_text())
    check_counts(stats, 8)
    got = read_frames(tmp_path / "live")
    want = batch_frames(built, tmp_path, driving, *flags)
    assert len(got) == stats["frames_out"]
    np.testing.assert_array_equal(got, want[stats["camera_frames"]])


@pytest.mark.slow
def test_udp_camera_gives_testlites_frames_and_streams_the_result(built, tmp_path):
    """A separate ffmpeg publishes the driving video (looped) on udp://127.0.0.1; live.py
    animates it and sends its results to another UDP port, where a third ffmpeg receives
    them. Camera frame k is driving frame k mod 8 (the stream starts at the key frame)."""
    camera, result = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    receiver = subprocess.Popen(
        # Probing 5 s of stream (the default) would outlast the session's results.
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-analyzeduration", "0"]
        + ["-probesize", "32", "-i", f"udp://127.0.0.1:{result}"]
        + ["-frames:v", "2", "-y", str(tmp_path / "received%d.png")],
        stdin=subprocess.DEVNULL,
    )
    live = Live(
        tmp_path,
        live_args(
            built,
            "--camera",
            f"udp://127.0.0.1:{camera}",
            "--relative",
            "--frames",
            "48",
            "--output",
            f"{tmp_path / 'live'}/",
            "--stats",
            str(tmp_path / "stats.json"),
            "--stream_to",
            f"udp://127.0.0.1:{result}",
        ),
    )
    sender = None
    try:
        live.wait_for("opening camera")
        time.sleep(0.5)  # ffmpeg binds its port
        sender = publisher(camera)
        code, out, err = live.finish()
        assert code == 0, err
        # The receiver keeps waiting on its socket once it has its frames: stopped below.
        deadline = time.monotonic() + 30
        while not (tmp_path / "received2.png").exists():
            assert time.monotonic() < deadline, "no frame came through the result stream"
            time.sleep(0.1)
        time.sleep(0.5)  # written whole
    finally:
        live.kill()
        for process in (sender, receiver):
            if process is not None:
                stop(process)
    stats = json.loads((tmp_path / "stats.json").read_text())
    check_counts(stats, 48)
    got = read_frames(tmp_path / "live")
    want = batch_frames(built, tmp_path, demo(CASE) / "driving.mp4", "--relative")
    np.testing.assert_array_equal(got, want[np.array(stats["camera_frames"]) % 8])
    received = imageio.imread(tmp_path / "received1.png")
    assert received.shape == (256, 256, 3)


@pytest.mark.slow
def test_page_streams_jpegs_answers_stats_and_reset_changes_the_reference(built, tmp_path):
    """--serve: the page, /result.mjpg and /camera.mjpg (decodable JPEG parts), /stats; a
    POST /reset makes the next animated frame the reference, so later results equal
    testlite.py --best_frame of that frame. The page's screenshot is docs/live.png
    (FOMM_SCREENSHOT=1)."""
    video = camera_video(tmp_path / "camera.mp4", 40, 10)
    live = Live(
        tmp_path,
        live_args(
            built,
            "--camera",
            str(video),
            "--relative",
            "--serve",
            "0",
            "--output",
            f"{tmp_path / 'live'}/",
            "--stats",
            str(tmp_path / "stats.json"),
        ),
    )
    try:
        url = live.url()
        with urllib.request.urlopen(url + "/", timeout=10) as response:
            page = response.read().decode()
        assert "/result.mjpg" in page and "/camera.mjpg" in page and "/source.jpg" in page
        live.wait_for_results(2)
        for stream in ("/result.mjpg", "/camera.mjpg"):
            parts = mjpeg_parts(url + stream, 2)
            for part in parts:
                assert imageio.imread(io.BytesIO(part), format="jpeg").ndim == 3
        request = urllib.request.Request(url + "/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response) == {"reset": True}
        stats = live.stats()
        assert stats["frames_in"] >= stats["frames_out"] >= 2 and "fps" in stats
        code, out, err = live.finish()
        assert code == 0, err
    finally:
        live.kill()
    stats = json.loads((tmp_path / "stats.json").read_text())
    check_counts(stats, 40)
    assert len(stats["resets"]) == 1, stats
    reference = stats["resets"][0]
    after = [k for k, index in enumerate(stats["camera_frames"]) if index >= reference]
    assert after, stats
    got = read_frames(tmp_path / "live")
    want = batch_frames(built, tmp_path, video, "--relative", "--best_frame", str(reference))
    cameras = np.array(stats["camera_frames"])
    np.testing.assert_array_equal(got[after], want[cameras[after]])


@pytest.mark.slow
def test_save_motion_replays_the_session_and_refuses_resets(built, tmp_path):
    """--save_motion with --relative --adapt_scale: POST /reset is refused (409, with why),
    and testlite.py --driving_motion of the template gives the session's recorded results,
    pixel for pixel (dropped camera frames are in neither)."""
    from modules.app import motion

    video = camera_video(tmp_path / "camera.mp4", 24, 10)
    template = tmp_path / "motion" / "live.npz"  # its folder is made
    flags = ("--relative", "--adapt_scale")
    args = ["--camera", str(video), *flags, "--serve", "0", "--save_motion", str(template)]
    args += ["--output", f"{tmp_path / 'live'}/", "--stats", str(tmp_path / "stats.json")]
    live = Live(tmp_path, live_args(built, *args))
    try:
        url = live.url()
        live.wait_for_results(1)
        request = urllib.request.Request(url + "/reset", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 409
        answer = json.load(refused.value)
        assert answer["reset"] is False and "--save_motion" in answer["error"], answer
        code, out, err = live.finish()
        assert code == 0, err
    finally:
        live.kill()
    assert str(template) in out
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["resets"] == []
    saved = motion.load(str(template))
    assert len(saved) == stats["frames_out"] and saved.fps == 10
    replay = batch_frames(built, tmp_path, template, *flags)
    np.testing.assert_array_equal(replay, read_frames(tmp_path / "live"))


def mjpeg_parts(url, count, timeout=30):
    """The first ``count`` JPEG parts of a multipart/x-mixed-replace stream."""
    parts = []
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        while len(parts) < count:
            line = response.readline()
            assert line, "the stream ended"
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                response.readline()  # the blank line before the body
                parts.append(response.read(length))
    return parts


@pytest.mark.slow
def test_frames_are_dropped_not_queued(built, tmp_path):
    """A camera at 200 frames/s, far faster than the model: most frames are dropped and
    counted, the latency stays that of a frame or two, not of a queue."""
    video = camera_video(tmp_path / "fast.mp4", 200, 200)
    code, out, err = run_live(
        built, tmp_path, "--camera", str(video), "--stats", str(tmp_path / "stats.json")
    )
    assert code == 0, err
    stats = json.loads((tmp_path / "stats.json").read_text())
    check_counts(stats, 200)
    assert stats["dropped"] > stats["frames_out"], stats
    # Queued, the last frame would wait for every frame before it (200 x the model's time).
    per_frame = sum(v for v in stats["stages_ms"].values() if v)
    assert stats["latency_ms"]["p95"] < 4 * per_frame + 500, stats


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_keeps_the_recording(built, tmp_path):
    """SIGTERM: one line, exit 143, the recording in place and playable, the motion template
    and the stats written."""
    from modules.app import motion
    from modules.app.probe import count_frames

    video = camera_video(tmp_path / "camera.mp4", 400, 25)
    output, stats_path = tmp_path / "rec.mp4", tmp_path / "stats.json"
    args = ["--camera", str(video), "--serve", "0", "--output", str(output)]
    args += ["--save_motion", str(tmp_path / "rec.npz")]
    live = Live(tmp_path, live_args(built, *args, "--stats", str(stats_path)))
    try:
        live.wait_for_results(3)
        live.process.send_signal(signal.SIGTERM)
        code, out, err = live.finish()
    finally:
        live.kill()
    assert code == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    stats = json.loads(stats_path.read_text())
    assert count_frames(output) == stats["frames_out"] >= 3
    assert len(motion.load(str(tmp_path / "rec.npz"))) == stats["frames_out"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_screenshot_of_the_page(built, tmp_path):
    """The --serve page in headless Chromium, with the example source and driving video."""
    reason = next(
        (
            f"{p} is missing"
            for p in (browser.CHROMIUM, browser.CHROMEDRIVER)
            if not os.path.exists(p)
        ),
        None,
    )
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests must run in CI: {reason}")
        pytest.skip(f"no browser here: {reason}")
    video = camera_video(tmp_path / "camera.mp4", 400, 25)
    source = ROOT / "example" / "source.png"
    args = ["--camera", str(video), "--relative", "--adapt_scale", "--serve", "0"]
    live = Live(tmp_path, live_args(built, *args, source=source))
    try:
        url = live.url()
        live.wait_for_results(3)
        with browser.chromium() as driver:
            driver.get(url + "/")
            deadline = time.monotonic() + 30
            while not driver.execute_script(
                "return [...document.images].every((i) => i.naturalWidth > 0) && "
                "document.getElementById('stats').textContent.includes('frames/s')"
            ):
                assert time.monotonic() < deadline, "the page did not show its pictures"
                time.sleep(0.2)
            time.sleep(1)
            shot = SCREENSHOT if os.environ.get("FOMM_SCREENSHOT") == "1" else tmp_path / "p.png"
            assert driver.save_screenshot(str(shot))
        assert imageio.imread(shot).shape[1] >= 1000
        live.process.send_signal(signal.SIGINT)
        code, _, err = live.finish()
        assert code == 130, err
    finally:
        live.kill()
