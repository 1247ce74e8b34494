"""The video kinds the original's dataset reads (frames_dataset.py ``read_video``), streamed:
``.mp4``, ``.mov`` and ``.gif`` files (imageio, as the original's ``mimread``), a folder of
frames (sorted by name) and a ``.png`` / ``.jpg`` strip of frames side by side.

Frames are used as they are, never resized: float32 in [0, 1] by ``img_as_float32`` (uint8 /
255, uint16 / 65535). Grayscale is repeated to RGB and an alpha channel dropped (the original
does that for files; here folders get it too). A frame of another size than the model's is an
error naming the video.
"""

import os

import imageio
import numpy as np
from skimage import img_as_float32

from ..errors import InputError

VIDEO_FILES = (".mp4", ".mov", ".gif")
STRIP_FILES = (".png", ".jpg")


def is_video(path):
    """A folder (of frames), or a file of a kind the original reads."""
    return os.path.isdir(path) or path.lower().endswith(VIDEO_FILES + STRIP_FILES)


def to_rgb(image, path):
    """uint8 / uint16 (H, W, 3) from grayscale, gray + alpha, RGB or RGBA."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"'{path}' holds an image of shape {image.shape}, not RGB or grayscale")
    if image.shape[2] <= 2:
        image = np.repeat(image[..., :1], 3, axis=2)
    return image[..., :3]


def _checked(frame, frame_shape, path, index):
    if frame.shape[:2] != tuple(frame_shape):
        raise InputError(
            f"'{path}' frame {index} is {frame.shape[1]}x{frame.shape[0]}, the model takes "
            f"{frame_shape[1]}x{frame_shape[0]}; the dataset modes use frames as they are "
            f"(as the original), so resize the video first"
        )
    return img_as_float32(frame)


def _imread(path):
    try:
        return imageio.v2.imread(path)
    except Exception as error:  # imageio raises many kinds for a file that is not an image
        raise InputError(
            f"cannot read '{path}' as an image ({type(error).__name__}); use a PNG or JPEG"
        ) from None


def read_frames(path, frame_shape):
    """Yields the frames of the video at ``path`` as float32 (H, W, 3) arrays; InputError for
    a video that cannot be read, has no frames or has frames of another size."""
    frame_shape = tuple(frame_shape[:2])
    count = 0
    for count, frame in enumerate(_raw_frames(path, frame_shape), 1):
        yield _checked(to_rgb(frame, path), frame_shape, path, count - 1)
    if count == 0:
        raise InputError(f"'{path}' has no frames")


def _raw_frames(path, frame_shape):
    if os.path.isdir(path):
        names = sorted(name for name in os.listdir(path) if not name.startswith("."))
        for name in names:
            yield _imread(os.path.join(path, name))
    elif path.lower().endswith(STRIP_FILES):
        strip = to_rgb(_imread(path), path)
        height, width = frame_shape
        if strip.shape[0] != height or strip.shape[1] % width:
            raise InputError(
                f"'{path}' is a {strip.shape[1]}x{strip.shape[0]} strip; a strip holds "
                f"{width}x{height} frames side by side, so its width must be a multiple of "
                f"{width} and its height {height}"
            )
        for left in range(0, strip.shape[1], width):
            yield strip[:, left : left + width]
    elif path.lower().endswith(VIDEO_FILES):
        yield from _video_frames(path)
    else:
        raise InputError(f"'{path}' is not a video kind the dataset modes read")


def _video_frames(path):
    """imageio's reader for the file, as ``mimread`` uses it: ffmpeg for .mp4 / .mov, pillow
    for .gif."""
    try:
        reader = imageio.v2.get_reader(path)
    except Exception as error:  # imageio raises many kinds for a damaged file
        raise InputError(
            f"cannot read '{path}' as a video ({type(error).__name__}); the file is damaged or "
            f"not a video"
        ) from None
    with reader:
        frames = iter(reader)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except Exception as error:  # a damaged frame
                raise InputError(
                    f"cannot decode '{path}' ({type(error).__name__}: {error}); the file is damaged"
                ) from None
            yield frame
