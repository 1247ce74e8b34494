"""The camera: a V4L2 device, a network stream or a video file played in real time, read
through the ffmpeg that imageio-ffmpeg ships as raw rgb24 frames on a pipe.

A thread reads the frames as they come and keeps only the newest one (the latest frame wins):
a frame that the animation has not taken when the next one arrives is counted as dropped,
never queued, so the delay between the camera and the result stays bounded however slow the
model is. The first frame is also kept, as the reference of relative motion.
"""

import collections
import os
import re
import stat
import subprocess
import threading
import time

from ...errors import InputError, UsageError
from ..probe import FORMATS, INPUT_PARAMS, check_file, ffmpeg_arg, ffmpeg_exe

# The URL schemes a camera may have, and the protocols ffmpeg may open for them (https needs
# tls and tcp, rtsp its rtp over udp or tcp); never file, so a stream cannot redirect to a
# local file. No playlist demuxer (hls, dash, concat) is allowed: FORMATS leaves them out.
SCHEMES = ("udp", "rtp", "rtsp", "rtmp", "srt", "tcp", "http", "https")
PROTOCOLS = "udp,rtp,tcp,http,https,tls,httpproxy,crypto,rtmp,srt"
STREAM_FORMATS = FORMATS + ",mpjpeg,rtsp,rtp"
DEVICE_FORMATS = "video4linux2,v4l2"
# The frame size is capped as for driving videos (modules/app/video.py).
MAX_FRAME_PIXELS = 4096 * 4096
PROBE_SECONDS = 1


def scheme_of(spec):
    """The URL scheme of ``spec`` ('udp' for 'udp://...'), or None for a path."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", spec)
    return match.group(1).lower() if match else None


def input_args(spec):
    """ffmpeg's input arguments for the camera ``spec`` and its kind ('device', 'stream' or
    'file'); a one-line error for what cannot be a camera."""
    scheme = scheme_of(spec)
    if scheme is not None:
        if scheme not in SCHEMES:
            raise UsageError(
                f"--camera {spec}: unsupported URL scheme '{scheme}://'; use a device such as "
                f"/dev/video0, a video file or one of {', '.join(s + '://' for s in SCHEMES)}"
            )
        # At most a second of stream to find the codec (ffmpeg's default is 5 s): a camera
        # should start fast.
        low_delay = ["-fflags", "nobuffer", "-flags", "low_delay", "-analyzeduration", "1000000"]
        whitelists = ["-protocol_whitelist", PROTOCOLS, "-format_whitelist", STREAM_FORMATS]
        return [*whitelists, *low_delay, "-i", spec], "stream"
    if spec.startswith("/dev/"):
        if not os.path.exists(spec):
            raise InputError(f"camera not found: '{spec}'. Check the device (ls /dev/video*).")
        if not stat.S_ISCHR(os.stat(spec).st_mode):
            raise InputError(
                f"camera '{spec}' is not a character device; give a V4L2 camera such as /dev/video0"
            )
        return ["-format_whitelist", DEVICE_FORMATS, "-f", "v4l2", "-i", spec], "device"
    path = check_file(spec, "Camera video")
    # -re: the file's frames arrive at its own frame rate, as a camera would send them.
    return [*INPUT_PARAMS, "-re", "-i", ffmpeg_arg(path)], "file"


class Frame:
    """One camera frame: its index (from 0), when it arrived (time.perf_counter) and its
    pixels (uint8 [H, W, 3])."""

    __slots__ = ("index", "arrival", "pixels")

    def __init__(self, index, arrival, pixels):
        self.index, self.arrival, self.pixels = index, arrival, pixels


class Camera:
    """The frames of ``spec``, newest first; ``limit``: stop after that many frames;
    ``timeout``: seconds without a frame after which the camera counts as stopped."""

    def __init__(self, spec, timeout=10.0, limit=None):
        self.spec = spec
        self.args, self.kind = input_args(spec)
        self.timeout = timeout
        self.limit = limit
        self.size = None  # (width, height)
        self.fps = None  # what the input declares, if it does
        self.frames_in = 0
        self.dropped = 0
        self.first = None  # Frame 0, the reference of relative motion
        self.ended = False  # the input ended (a file's end, or --frames reached)
        self.failure = None  # why the camera stopped, when it did not end normally
        self._latest = None
        self._last_arrival = None
        self._changed = threading.Condition()
        self._log = collections.deque(maxlen=30)
        self._header = threading.Event()
        self._process = None

    def open(self):
        """Starts ffmpeg and waits (up to ``timeout``) for it to say the frame size; an
        InputError naming the camera when it cannot open it."""
        passthrough = [] if self.kind == "file" else ["-fps_mode", "passthrough"]
        command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", *self.args]
        # The same output as imageio's reader (the batch scripts'), so that frames match.
        command += ["-an", "-sn", "-dn", *passthrough]
        command += ["-f", "image2pipe", "-pix_fmt", "rgb24", "-vcodec", "rawvideo", "-"]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        threading.Thread(target=self._read_log, daemon=True).start()
        # A stream's header comes after up to PROBE_SECONDS of its frames.
        if not self._header.wait(self.timeout + PROBE_SECONDS) or self.size is None:
            running = self._process.poll() is None
            self.close()
            reason = None if running else self.reason()
            reason = reason or f"no video in {self.timeout:g} s (--camera_timeout)"
            raise InputError(f"cannot open camera '{self.spec}': {reason}")
        width, height = self.size
        if width * height > MAX_FRAME_PIXELS:
            self.close()
            raise InputError(
                f"camera '{self.spec}' sends {width} x {height} frames; the limit is "
                f"4096 x 4096. Lower its resolution."
            )
        self._last_arrival = time.perf_counter()
        threading.Thread(target=self._read_frames, daemon=True).start()
        return self

    def reason(self):
        """ffmpeg's last error line, without its [component @ address] prefix."""
        lines = [line for line in self._log if line.strip()]
        return lines[-1].split("] ")[-1].strip() if lines else None

    def _read_log(self):
        section = None
        for raw in self._process.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip()
            self._log.append(line)
            if line.startswith(("Input #", "Output #")):
                section = line.split(" ")[0]
            video = re.search(r"Stream #\d+:\d+.*?: Video: (.*)$", line)
            if video and section == "Input":
                fps = re.search(r"([\d.]+)(k?) fps", video.group(1))
                if fps and self.fps is None:
                    self.fps = float(fps.group(1)) * (1000 if fps.group(2) else 1)
            if video and section == "Output":
                size = re.search(r"\b([1-9]\d*)x([1-9]\d*)\b", video.group(1))
                if size:
                    self.size = (int(size.group(1)), int(size.group(2)))
                self._header.set()
        self._header.set()  # ffmpeg ended: open() reads why

    def _read_frames(self):
        width, height = self.size
        length = width * height * 3
        import numpy as np

        stdout = self._process.stdout
        try:
            while self.limit is None or self.frames_in < self.limit:
                data = stdout.read(length)
                if len(data) < length:
                    break
                now = time.perf_counter()
                frame = Frame(self.frames_in, now, np.frombuffer(data, np.uint8))
                frame.pixels = frame.pixels.reshape(height, width, 3)
                with self._changed:
                    if self.first is None:
                        self.first = frame
                    if self._latest is not None:
                        self.dropped += 1  # never taken: the newer frame replaces it
                    self._latest = frame
                    self.frames_in += 1
                    self._last_arrival = now
                    self._changed.notify_all()
        except (OSError, ValueError):
            pass  # the pipe closed under us: close() was called
        with self._changed:
            if self.kind == "file" or self.frames_in == self.limit:
                self.ended = True
            elif self.failure is None:
                why = self.reason() if self._process.poll() not in (None, 0) else None
                self.failure = f"stopped sending ({why})" if why else "stopped sending"
            self._changed.notify_all()
        if self.frames_in == self.limit:
            self._stop_process()

    def take(self):
        """The newest frame not taken yet, waiting for one; None once the camera ended.
        InputError when it stopped sending, or sent nothing for ``timeout`` seconds."""
        with self._changed:
            if not self._wait(lambda: self._latest is not None):
                return None
            frame, self._latest = self._latest, None
            return frame

    def wait_first(self):
        """The first frame (without taking it), waiting for it as ``take`` waits."""
        with self._changed:
            self._wait(lambda: self.first is not None)
            return self.first

    def _wait(self, ready):
        """Waits (holding ``_changed``) until ``ready()``: True, or False once the camera
        ended; InputError when it stopped or stalled."""
        while not ready():
            if self.ended:
                return False
            if self.failure:
                raise self.stopped(self.failure)
            waited = time.perf_counter() - self._last_arrival
            if waited >= self.timeout:
                self.failure = f"sent no frame for {self.timeout:g} s (--camera_timeout)"
                raise self.stopped(self.failure)
            self._changed.wait(min(0.5, self.timeout - waited))
        return True

    def stopped(self, why):
        return InputError(f"camera '{self.spec}' {why} after {self.frames_in} frames")

    def _stop_process(self):
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self):
        """Stops ffmpeg; the reading threads end with its pipes."""
        self._stop_process()
        with self._changed:
            if not self.failure:
                self.ended = True
            self._changed.notify_all()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()
