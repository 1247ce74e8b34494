"""What the live.py tests share: live.py in a child process, cameras (a video file re-timed,
an ffmpeg publishing on udp://127.0.0.1) and the batch frames to compare with."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import imageio.v2 as imageio
from helpers import ROOT, demo, model_args, read_frames, run_script

CASE = "tiny-vox"


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
    """testlite.py's frames for ``driving``: a video, or a motion template (.npz)."""
    out = tmp_path / "batch"
    kind = "--driving_motion" if str(driving).endswith(".npz") else "--driving_video"
    result = run_script(
        "testlite.py",
        *model_args("testlite.py", CASE, built),
        "--source_image",
        str(demo(CASE) / "source.png"),
        kind,
        str(driving),
        "--output",
        f"{out}/",
        *flags,
    )
    assert result.returncode == 0, result.stderr
    return read_frames(out)


def camera_video(path, frames, fps):
    """The demo's driving video (8 frames) repeated to ``frames`` frames at ``fps``."""
    from modules.app.video_writer import VideoWriter

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
