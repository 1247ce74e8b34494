"""Is the driving video damaged? Counting what ffmpeg cannot decode.

imageio hides damage: ffmpeg conceals broken macroblocks, drops frames it cannot decode and
imageio repeats frames to keep the frame rate, so a damaged video reads as a shorter or
smudged but normal one. ``DecodeCheck`` asks ffmpeg itself, in a background process beside
the animation: a stream copy counts the frames the container declares (its packets, no
decoding), and a decode to the null muxer (no frame rate conversion) counts the frames that
decode, the frames it had to conceal errors in (the H.264 decoder's "error while decoding
MB" lines, one per damaged slice), and every error it reports. A frame is *affected* if it
did not decode or was concealed.
"""

import re
import subprocess
import threading

from ..errors import InputError
from .probe import ffmpeg_arg

_FRAME = re.compile(rb"frame=\s*(\d+)")


def _ffmpeg_pass(path, seconds, *args):
    """Runs ffmpeg on the first video stream to the null muxer; returns (frames it reports,
    error lines, lines that report a concealed frame). stderr is read as it comes, never
    kept whole: a long damaged video can print millions of lines."""
    import imageio_ffmpeg

    # A time limit, not a frame count: ffmpeg would read on past dropped frames to fill one.
    limit = ["-t", f"{seconds:.6f}"] if seconds else []
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error"]
    command += ["-stats", "-i", ffmpeg_arg(path), "-map", "0:v:0", *args, *limit]
    process = subprocess.Popen(
        [*command, "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    count, errors, concealed, rest = 0, 0, 0, b""
    while chunk := process.stderr.read(65536):
        lines = (rest + chunk).replace(b"\r", b"\n").split(b"\n")
        rest = lines.pop()
        for line in lines:
            found = _FRAME.search(line)
            if found:  # the progress line
                count = int(found.group(1))
            elif line.strip():
                errors += 1
                # the H.264 decoder's line for a slice it decoded in part and concealed
                concealed += b"error while decoding MB" in line or b"concealing" in line
        rest = rest[-4096:]
    process.wait()
    found = _FRAME.search(rest)
    return (int(found.group(1)) if found else count), errors, concealed


class DecodeCheck:
    """Starts checking ``path`` (its first ``frames`` at ``fps``, or all) in a thread; ``report``
    waits for it and returns None for a clean video, else a sentence naming the file and how
    many frames were affected."""

    def __init__(self, path, frames=None, fps=None):
        self.path, self.frames = path, frames
        self.seconds = frames / fps if frames else None
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            declared, _, _ = _ffmpeg_pass(self.path, None, "-c", "copy")
            declared = min(declared, self.frames) if self.frames else declared
            decoded, errors, concealed = _ffmpeg_pass(
                self.path, self.seconds, "-fps_mode", "passthrough"
            )
            self.result = declared, decoded, errors, concealed
        except OSError:
            self.result = None  # ffmpeg could not run: the animation itself will say so

    def report(self):
        self.thread.join()
        if self.result is None:
            return None
        declared, decoded, errors, concealed = self.result
        missing = max(declared - decoded, 0)
        affected = missing + concealed
        if not affected and (not errors or self.seconds):
            # With --frames, ffmpeg decodes a few packets past the last frame used: errors
            # there do not touch the animation.
            return None
        count = affected or "an unknown number"
        whose = "the first" if self.frames else "its"
        return (
            f"'{self.path}' is damaged: {count} of {whose} {max(declared, decoded)} frames "
            f"affected ({missing} could not be decoded, {concealed} decoded with concealed "
            f"errors; ffmpeg reported {errors} decoding errors)"
        )

    def check(self, strict):
        """Raises InputError with ``strict``; otherwise returns the warning text or None."""
        text = self.report()
        if text and strict:
            raise InputError(f"{text}. Repair or re-encode the video, or drop --strict.")
        return text
