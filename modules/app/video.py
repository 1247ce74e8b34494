"""Reading videos as the original demo.py does (imageio v2 + ffmpeg), streamed frame by
frame, never held whole in memory; writing them is modules/app/video_writer.py.
"""

import os

import imageio
import numpy as np

from ..errors import InputError
from .probe import INPUT_PARAMS, check_file, ffmpeg_arg, video_stream_info

# What imageio.v2.get_reader(path) hands to its ffmpeg plugin, as demo.py did. Always ffmpeg (not
# pillow for .gif), so frames are rgb24 and fps is known.
_IMAGEIO_FFMPEG_EXTS = (".mov", ".avi", ".mpg", ".mpeg", ".mp4", ".mkv", ".webm", ".wmv", ".h264")


# Driving frames above 4096 x 4096 pixels are refused from the header, before any is decoded:
# each is decoded whole and resized in float64 (an 8192 x 8192 frame took 25 s and 2.4 GB), and
# the models see 256 x 256 of it. 4K UHD (3840 x 2160) and DCI 4K (4096 x 2160) pass.
MAX_FRAME_PIXELS = 4096 * 4096


def check_frame_size(path, video):
    """InputError when the header's frame size (``video_stream_info(path)["video"]``) is
    missing or over MAX_FRAME_PIXELS."""
    width, height = video["width"], video["height"]
    if not (width and height):
        raise InputError(
            f"Cannot read the frame size of video '{path}' from its header. "
            f"Give a valid video file such as .mp4."
        )
    if width * height > MAX_FRAME_PIXELS:
        raise InputError(
            f"Video '{path}' has frames of {width} x {height} pixels; the limit is "
            f"{MAX_FRAME_PIXELS / 1e6:.1f} Mpx (4096 x 4096). Downscale it first, e.g. "
            f"ffmpeg -i IN -vf scale=1920:-2 OUT.mp4"
        )


class VideoReader:
    """Stream the frames of a video as uint8 (H, W, 3) arrays, like demo.py's imageio reader.

    `fps`, `size` = (width, height), `num_frames` (approximate, from duration * fps, or None;
    use `count_frames(path)` for the exact count). Iterate for all frames, or
    `frames(start, stop)` for a range; each pass decodes from the start and keeps one frame.
    """

    def __init__(self, path, info=None):
        """``info``: ``video_stream_info`` of ``path`` when it was probed already (the frame
        process's child is handed its parent's)."""
        self.path = check_file(path, "Driving video")
        info = info or video_stream_info(self.path)
        self.info = info
        fmt = info["format"]
        if fmt.endswith("_pipe") or fmt == "image2":
            raise InputError(
                f"'{self.path}' is a still image ({fmt.replace('_pipe', '')}), "
                f"not a video. Give a video file such as .mp4."
            )
        if info["video"] is None:
            raise InputError(f"'{self.path}' has no video stream. Give a video file with frames.")
        check_frame_size(self.path, info["video"])
        self._reader = self._open()
        try:
            meta = self._reader.get_meta_data()
            # Peek at frame 0: imageio caches it, so the first pass does not decode it twice.
            self._reader.get_data(0)
        except (IndexError, StopIteration, RuntimeError, OSError):
            self.close()
            raise InputError(
                f"'{self.path}' has no video frames. Give a video file with frames."
            ) from None
        self.fps = float(meta["fps"])
        self.size = tuple(meta["size"])
        self.num_frames = None
        if info["duration"] and self.fps > 0:
            self.num_frames = max(1, int(round(info["duration"] * self.fps)))

    def _open(self):
        path = ffmpeg_arg(self.path)
        try:
            if os.path.splitext(path)[1].lower() in _IMAGEIO_FFMPEG_EXTS:
                return imageio.v2.get_reader(path, format="FFMPEG", input_params=INPUT_PARAMS)
            # imageio's ffmpeg plugin refuses extensions it does not list (.gif, .m4v, .flv...)
            # although ffmpeg reads them; this is v2.get_reader with the extension vouched for.
            return imageio.v3.imopen(
                path, "r?", plugin="FFMPEG", extension=".mp4", legacy_mode=True
            ).legacy_get_reader(input_params=INPUT_PARAMS)
        except (OSError, RuntimeError, ValueError, IndexError, StopIteration):
            raise InputError(
                f"Cannot decode '{self.path}': the file is damaged or has no "
                f"decodable video frames. Give a valid video file."
            ) from None

    def frames(self, start=0, stop=None):
        """Yield frames start..stop-1 (stop=None: to the end)."""
        if start < 0 or (stop is not None and stop < start):
            raise ValueError(f"bad frame range ({start}, {stop})")
        reader, self._reader = self._reader, None
        if reader is None:
            reader = self._open()
        try:
            it = iter(reader)
            index = 0
            while stop is None or index < stop:
                try:
                    frame = next(it)
                except StopIteration:
                    return
                except RuntimeError:
                    # As demo.py: a truncated last frame ends the stream.
                    return
                if index >= start:
                    yield np.asarray(frame)
                index += 1
        finally:
            reader.close()

    def __iter__(self):
        return self.frames()

    def close(self):
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
