"""Writing videos (or folders of PNG frames), streamed frame by frame, atomically: frames go
to a temporary file beside the target (modules/atomic.py) that is renamed into place only
when complete; reading them is modules/app/video.py.
"""

import errno
import os
import re
import sys
import tempfile
import threading
import warnings

import imageio
import imageio_ffmpeg
import numpy as np

from ..atomic import discard, temp_beside
from ..errors import InputError
from . import cli
from .audio import AUDIO_COPY, add_audio

# extension -> imageio-ffmpeg write_frames arguments
_X264 = dict(
    codec="libx264",
    pix_fmt_out="yuv420p",
    macro_block_size=2,
    output_params=["-crf", "18", "-preset", "medium"],
)
_FORMATS = {
    ".mp4": dict(_X264, output_params=_X264["output_params"] + ["-movflags", "+faststart"]),
    ".m4v": dict(_X264, output_params=_X264["output_params"] + ["-movflags", "+faststart"]),
    ".mov": dict(_X264, output_params=_X264["output_params"] + ["-movflags", "+faststart"]),
    ".mkv": _X264,
    ".avi": dict(
        codec="mpeg4", pix_fmt_out="yuv420p", macro_block_size=2, output_params=["-qscale:v", "2"]
    ),
    ".webm": dict(
        codec="libvpx-vp9",
        pix_fmt_out="yuv420p",
        macro_block_size=2,
        output_params=[
            "-crf",
            "30",
            "-b:v",
            "0",
            "-deadline",
            "good",
            "-cpu-used",
            "4",
            "-row-mt",
            "1",
        ],
    ),
    # A palette per frame keeps GIF streaming (a global palette needs every frame first).
    ".gif": dict(
        codec="gif",
        pix_fmt_out="pal8",
        macro_block_size=1,
        output_params=[
            "-vf",
            "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1",
        ],
    ),
}


FRAME_NAME = re.compile(r"\d{6}\.png")  # 000000.png, 000001.png, ...: PNG frames


def check_output(path, overwrite=False):
    """'png' for a folder of PNG frames (a path ending in '/' or an existing directory),
    'video' for a known video extension; InputError otherwise, before anything is written.
    A folder that already holds numbered frames (which a run would replace, however many
    frames it makes) is an InputError unless ``overwrite``."""
    path = os.fspath(path)
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        cli.check_folder(path, path)
        if not overwrite:
            _refuse_frames(path, frame_names(path))
        return "png"
    cli.check_folder(os.path.dirname(os.path.abspath(path)), path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in _FORMATS:
        what = f"unknown video extension '{ext}'" if ext else "no file extension"
        raise InputError(
            f"Cannot write '{path}': {what}. Use one of "
            f"{' '.join(sorted(_FORMATS))}, or end the path with '/' for PNG "
            f"frames."
        )
    return "video"


def frame_names(folder):
    """The numbered PNG frames already in ``folder`` (none when it is not a folder)."""
    try:
        return sorted(name for name in os.listdir(folder) if FRAME_NAME.fullmatch(name))
    except OSError:
        return []


def _refuse_frames(folder, names):
    if names:
        raise InputError(
            f"Cannot write '{folder}': it already holds {len(names)} numbered PNG frame(s) "
            f"({names[0]}...) that this run would replace. Choose an empty or new folder, "
            f"or pass --overwrite to replace them."
        )


class VideoWriter:
    """Stream uint8 (H, W, 3) frames into a video, atomically.

    The container follows the extension (.mp4 .m4v .mov .mkv: H.264; .avi: MPEG-4; .webm: VP9;
    .gif); a path ending in '/' or naming an existing directory gets lossless PNG frames
    000000.png, 000001.png, ... Frames go to a temporary file (or directory) beside the target,
    which replaces the target only on `close()` or a clean exit of the `with` block; on an
    exception or `abort()` the temporary is removed and an existing target is left untouched.
    An existing folder that holds numbered frames is an InputError unless `overwrite`; then
    the frames written replace theirs and every other file stays, higher-numbered frames too.
    """

    def __init__(
        self,
        path,
        fps,
        audio_from=None,
        audio_seconds=None,
        audio_start=None,
        audio_info=None,
        overwrite=False,
    ):
        path = os.fspath(path)
        self.fps = fps
        # Audio is muxed into the temporary file before it is renamed, so the target only
        # ever holds a finished video.
        self.audio_from, self.audio_seconds = audio_from, audio_seconds
        self.audio_start = audio_start
        self.audio_info = audio_info  # video_stream_info(audio_from), when it is known
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.overwrite = overwrite
        self.png_dir = check_output(path, overwrite) == "png"
        self.path = os.path.normpath(path) if self.png_dir else path
        ext = os.path.splitext(path)[1].lower()
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._tmp = temp_beside(self.path, folder=self.png_dir)
        except OSError as e:
            raise InputError(
                f"Cannot write '{path}': {e.strerror}. Choose a writable location."
            ) from None
        self._options = None if self.png_dir else _FORMATS[ext]
        self._gen = None
        self._proc = None  # ffmpeg, once started
        self._log = _log_file() if not self.png_dir else None
        self._shape = None
        self.count = 0

    def append(self, frame):
        """Add one uint8 (H, W, 3) frame."""
        if self._tmp is None:
            raise ValueError(f"VideoWriter for '{self.path}' is closed")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise ValueError(
                f"frame {self.count} has shape {frame.shape}, the first had {self._shape}"
            )
        try:
            if self.png_dir:
                imageio.v2.imwrite(os.path.join(self._tmp, f"{self.count:06d}.png"), frame)
            else:
                if self._gen is None:
                    self._start(frame.shape)
                self._gen.send(np.ascontiguousarray(frame))
        except OSError as error:  # ffmpeg ended (BrokenPipe), or the disk is full
            self._fail(error)
        self.count += 1

    def _start(self, shape):
        """Starts ffmpeg with its messages in a log of ours: on a full disk they would bury
        the one line that says so; any other failure shows them."""
        opts = dict(self._options, output_params=list(self._options["output_params"]))
        self._gen = imageio_ffmpeg.write_frames(
            self._tmp,
            (shape[1], shape[0]),
            fps=self.fps,
            quality=None,
            ffmpeg_log_level="error",
            **opts,
        )
        with _stderr_to(self._log):
            self._gen.send(None)  # launches ffmpeg, which keeps the stderr it started with
        # imageio-ffmpeg does not check ffmpeg's exit status: keep its process to do so.
        frame = getattr(self._gen, "gi_frame", None)
        self._proc = frame.f_locals.get("p") if frame is not None else None

    def close(self):
        """Finish the file and move it into place."""
        if self._tmp is None:
            return
        try:
            if self._gen is not None:
                gen, self._gen = self._gen, None
                try:
                    gen.close()  # waits for ffmpeg to finish the file
                except OSError as error:
                    self._fail(error)
                if self._proc is not None and self._proc.returncode:
                    self._fail(None)
            if self.count == 0:
                raise ValueError(f"no frames were given for '{self.path}'; nothing written")
            if not self.png_dir and os.path.getsize(self._tmp) == 0:
                self._fail(None)
            self._show_log()
            if self.audio_from is not None:
                self._add_audio()
            if self.png_dir:
                self._commit_dir()
            else:
                os.replace(self._tmp, self.path)
                self._tmp = None
        finally:
            self.abort()

    def _fail(self, error):
        """Raises for a write that failed: a full disk is an InputError (one line: nothing
        is wrong with the inputs, but the run cannot finish); anything else shows ffmpeg's
        messages and raises ``error`` (a bug). The temporary goes either way."""
        full = _disk_full(error, self._log_text(), self._tmp)
        if not full:
            self._show_log()
        self.abort()
        if full:
            raise InputError(
                f"Cannot write '{self.path}': no space left on device. Free space or choose "
                f"another output path."
            ) from None
        raise error or RuntimeError(f"ffmpeg failed to write '{self.path}'")

    def _log_text(self):
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            return self._log.read(1 << 20).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _show_log(self):
        """ffmpeg's messages, where nothing explains them better, on stderr as before."""
        text = self._log_text()
        if text:
            try:
                sys.stderr.write(text)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass  # no stderr to show them on
            self._log.truncate(0)

    def _add_audio(self):
        ext = os.path.splitext(self.path)[1].lower()
        if self.png_dir or ext not in AUDIO_COPY:
            what = "a folder of PNG frames" if self.png_dir else f"a '{ext}' file"
            warnings.warn(
                f"No audio added: '{self.path}' is {what}, which cannot hold audio.", stacklevel=3
            )
            return
        add_audio(self._tmp, self.audio_from, self.audio_seconds, self.audio_start, self.audio_info)

    def _commit_dir(self):
        if not os.path.isdir(self.path):
            os.rename(self._tmp, self.path)
            self._tmp = None
            return
        names = sorted(os.listdir(self._tmp))
        if not self.overwrite:  # frames put there since the run began
            present = [n for n in names if os.path.lexists(os.path.join(self.path, n))]
            _refuse_frames(self.path, present)
        # Only the frames written are replaced: every other file in the folder is the user's.
        for name in names:
            os.replace(os.path.join(self._tmp, name), os.path.join(self.path, name))

    def abort(self):
        """Stop and remove the temporary output; the target is not touched."""
        if self._gen is not None:
            gen, self._gen = self._gen, None
            try:
                gen.close()
            except Exception:
                pass
        if self._tmp is not None:
            tmp, self._tmp = self._tmp, None
            discard(tmp)
        if self._log is not None:
            log, self._log = self._log, None
            log.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        # Never leave a temporary behind, even when the caller forgot to close.
        try:
            self.abort()
        except Exception:
            pass


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded")
_STDERR_LOCK = threading.Lock()


def _disk_full(error, log, tmp):
    """Whether a write failed for want of space: the error says so, ffmpeg's log says so, or
    (no log) the file system of ``tmp`` has no block left."""
    if getattr(error, "errno", None) in _DISK_FULL or any(t in log for t in _DISK_FULL_TEXT):
        return True
    try:
        return tmp is not None and os.statvfs(os.path.dirname(tmp)).f_bavail == 0
    except OSError:
        return False


def _log_file():
    try:
        return tempfile.TemporaryFile()
    except OSError:
        return None  # ffmpeg's messages go to stderr as they come


class _stderr_to:
    """File descriptor 2 points to ``log`` inside the block (a child started there keeps it);
    nothing changes when ``log`` is None or descriptor 2 is closed."""

    def __init__(self, log):
        self.log = log
        self.saved = None

    def __enter__(self):
        if self.log is None:
            return
        _STDERR_LOCK.acquire()
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # a closed stderr: the child's messages go to the log all the same
        try:
            self.saved = os.dup(2)
        except OSError:
            _STDERR_LOCK.release()
            return
        os.dup2(self.log.fileno(), 2)

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.saved = None
            _STDERR_LOCK.release()
