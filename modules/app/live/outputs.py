"""Where the results go besides the page: ``--stream_to URL`` (an ffmpeg stream, e.g. MPEG-TS
over UDP for OBS) and ``--output FILE`` (a recording, or PNG frames in a folder)."""

import collections
import subprocess
import threading

from ...errors import InputError, UsageError
from ..pipeline import Encoder
from ..probe import ffmpeg_exe
from ..video_writer import VideoWriter, check_output
from .capture import scheme_of

# --stream_to's URL schemes and the container each carries.
STREAM_CONTAINERS = {"udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rtmp": "flv"}
STREAM_PROTOCOLS = "udp,tcp,srt,rtmp"


def check_stream_url(url):
    scheme = scheme_of(url)
    if scheme not in STREAM_CONTAINERS:
        given = f"URL scheme '{scheme}://'" if scheme else "not a URL"
        raise UsageError(
            f"--stream_to {url}: unsupported {given}; use one of "
            f"{', '.join(s + '://' for s in STREAM_CONTAINERS)} (e.g. udp://127.0.0.1:5000)"
        )
    return url


class Stream:
    """The results, H.264 in MPEG-TS (FLV for rtmp://), sent by ffmpeg to ``url`` at the rate
    they come (wall-clock timestamps). A thread feeds ffmpeg the newest result only, so a
    slow network never holds up the animation."""

    def __init__(self, url, size):
        self.url = check_stream_url(url)
        width, height = size
        self.frame_bytes = width * height * 3
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-use_wallclock_as_timestamps", "1", "-i", "-",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-pix_fmt", "yuv420p", "-g", "25",
            "-protocol_whitelist", STREAM_PROTOCOLS,
            "-f", STREAM_CONTAINERS[scheme_of(url)], url,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.log = collections.deque(maxlen=10)
        self.failure = None
        self.pending = None
        self.changed = threading.Condition()
        self.closing = False
        threading.Thread(target=self._read_log, daemon=True).start()
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _read_log(self):
        for raw in self.process.stderr:
            self.log.append(raw.decode("utf-8", errors="replace").strip())

    def _feed(self):
        while True:
            with self.changed:
                while self.pending is None and not self.closing:
                    self.changed.wait()
                frame, self.pending = self.pending, None
            if frame is None:
                return
            try:
                self.process.stdin.write(frame.tobytes())
                self.process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.process.wait()
                lines = [line for line in self.log if line]
                why = lines[-1].split("] ")[-1] if lines else "ffmpeg stopped"
                self.failure = f"cannot stream to {self.url}: {why}"
                return

    def put(self, frame):
        """Hands over the newest result (uint8 [H, W, 3]); InputError once ffmpeg failed."""
        if self.failure:
            raise InputError(self.failure)
        with self.changed:
            self.pending = frame
            self.changed.notify()

    def close(self):
        with self.changed:
            self.closing = True
            self.changed.notify()
        self.thread.join(timeout=5)
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def recording_fps(camera):
    """The frame rate of --output's recording and --save_motion's template: the camera's,
    25 when it does not say."""
    return camera.fps or 25.0


class Recording:
    """``--output``: every result, through the scripts' VideoWriter (a temporary file beside
    the target until ``finish``), encoded in a background thread. ``fps``: the camera's."""

    def __init__(self, path, fps):
        check_output(path)
        self.path = path
        self.writer = VideoWriter(path, fps)
        self.encoder = Encoder(self.writer).__enter__()
        self.done = False

    def put(self, frame):
        self.encoder.put([frame])

    def finish(self):
        """Puts the recording in place (playable, whatever stopped the session); nothing
        when no frame was animated."""
        self.done = True
        self.encoder.__exit__(None, None, None)
        if self.writer.count:
            self.writer.close()
        else:
            self.writer.abort()
        return self.writer.count

    def abort(self):
        """Removes the unfinished recording (a bug stopped the session)."""
        if self.done:
            return
        self.done = True
        self.encoder.__exit__(Exception, None, None)
        self.writer.abort()
