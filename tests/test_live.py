"""live.py on the tiny vox TF Lite models: real processes, real ffmpeg streams on 127.0.0.1,
real HTTP clients and a headless Chromium; no mocks.

A live result must equal testlite.py's frame for the same driving frame with the same
reference frame (docs/live.md): the live loop runs batch 1, testlite.py batch 4, and the TF
Lite models give the same pixels at both."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import browser
import imageio.v2 as imageio
import numpy as np
import pytest
from helpers import ROOT, demo, model_args, read_frames, run_script

CASE = "tiny-vox"
SCREENSHOT = ROOT / "docs" / "live.png"


def ffmpeg():
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_args(built, *flags, source=None):
    return [
        *model_args("testlite.py", CASE, built),
        "--source_image",
        str(source or demo(CASE) / "source.png"),
        *flags,
    ]


class Live:
    """live.py in a child process; its stderr goes to a file that ``wait_for`` reads."""

    def __init__(self, tmp_path, args):
        self.log = tmp_path / "live.err"
        self.stderr = open(self.log, "w")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "live.py"), *args],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def text(self):
        return self.log.read_text()

    def wait_for(self, text, timeout=60):
        deadline = time.monotonic() + timeout
        while text not in self.text():
            assert self.process.poll() is None, f"live.py ended: {self.text()}"
            assert time.monotonic() < deadline, f"no '{text}' in {timeout} s: {self.text()}"
            time.sleep(0.05)
        return self.text()

    def url(self):
        line = self.wait_for("serving http://")
        return line.split("serving ", 1)[1].split()[0].rstrip("/")

    def stats(self):
        with urllib.request.urlopen(self.url() + "/stats", timeout=10) as response:
            return json.load(response)

    def wait_for_results(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while self.stats()["frames_out"] < count:
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.05)

    def finish(self, timeout=120):
        out, _ = self.process.communicate(timeout=timeout)
        self.stderr.close()
        return self.process.returncode, out, self.text()

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def run_live(built, tmp_path, *flags, source=None):
    result = run_script("live.py", *live_args(built, *flags, source=source), timeout=120)
    return result.returncode, result.stdout, result.stderr


def batch_frames(built, tmp_path, driving, *flags):
    out = tmp_path / "batch"
    result = run_script(
        "testlite.py",
        *model_args("testlite.py", CASE, built),
        "--source_image",
        str(demo(CASE) / "source.png"),
        "--driving_video",
        str(driving),
        "--output",
        f"{out}/",
        *flags,
    )
    assert result.returncode == 0, result.stderr
    return read_frames(out)


def camera_video(path, frames, fps):
    """The demo's driving video (8 frames) repeated to ``frames`` frames at ``fps``."""
    from modules.app.video import VideoWriter

    source = imageio.mimread(demo(CASE) / "driving.mp4")
    with VideoWriter(path, fps) as writer:
        for i in range(frames):
            writer.append(source[i % len(source)])
    return path


def publisher(port, video=None, loop=True):
    """An ffmpeg that streams ``video`` (the demo's driving video) as MPEG-TS to
    udp://127.0.0.1:PORT in real time: its H.264 copied, so the frames decode as the file's."""
    video = video or demo(CASE) / "driving.mp4"
    return subprocess.Popen(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-re"]
        + (["-stream_loop", "-1"] if loop else [])
        + ["-i", str(video), "-an", "-c:v", "copy", "-f", "mpegts", f"udp://127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL,
    )


def stop(process):
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


def check_counts(stats, frames_in):
    assert stats["frames_in"] == frames_in
    assert stats["frames_out"] + stats["dropped"] == frames_in
    cameras = stats["camera_frames"]
    assert len(cameras) == stats["frames_out"]
    assert cameras == sorted(set(cameras)) and cameras[-1] == frames_in - 1
    assert stats["backend"] == "tflite" and stats["latency_ms"]["p95"] is not None
    assert set(stats["stages_ms"]) >= {"kp_detector", "process_kp", "generator"}


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
    """SIGTERM: one line, exit 143, the recording in place and playable, the stats written."""
    from modules.app.probe import count_frames

    video = camera_video(tmp_path / "camera.mp4", 400, 25)
    output, stats_path = tmp_path / "rec.mp4", tmp_path / "stats.json"
    args = ["--camera", str(video), "--serve", "0", "--output", str(output)]
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


# Bad input: one line, exit 2, no traceback, nothing lost


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
