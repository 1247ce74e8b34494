"""Reading images and resizing frames as the original demo.py does (imageio v2, skimage).

Photos can be large (phones take 48-200 Mpx): the header is read first (by Pillow, or tifffile
for the TIFFs Pillow cannot open, such as float32 RGB) and images above ``MAX_PIXELS``, or
whose size neither can read, are refused before any pixel is decoded, and ``resize_frame``
resizes one channel at a time, which gives demo.py's numbers bit for bit (the anti-aliasing
Gaussian and the interpolation never mix channels) with a third of its float64 memory. A uint8
frame that already has the model's size skips skimage: its resize to the same shape is
``img_as_float`` bit for bit, and importing skimage.transform (with scipy.ndimage and
scipy.spatial) costs about 0.25 s of every script's start.
"""

import contextlib
import logging
import warnings

import imageio
import numpy as np

from ..errors import InputError
from .boxes import crop
from .probe import check_file

MAX_PIXELS = 200_000_000  # 200 Mpx: resizing one at the limit needs about 4 GB
# Colour modes imageio would hand over as they are but that are not RGB, grey or grey/RGB +
# alpha: Pillow converts them (CMYK with its own inversion for Adobe JPEGs).
_CONVERT = {"CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "1": "L"}


def resize_frame(frame, frame_shape=(256, 256)):
    """demo.py's `resize(frame, frame_shape)[..., :3]`: float64 (H, W, 3) in [0, 1].

    Grayscale (2-D, 1 channel, or gray + alpha) is repeated to RGB; an alpha channel is dropped.
    Each channel is resized on its own (tests/test_images.py checks it equals the whole call).
    """
    shape = tuple(frame_shape[:2])
    if frame.ndim == 2:
        frame = frame[..., None]
    used = 3 if frame.shape[-1] >= 3 else 1
    if frame.shape[:2] == shape and frame.dtype == np.uint8:
        img = frame[..., :used] * (1 / 255)  # skimage's img_as_float
    else:
        from skimage.transform import resize

        img = np.stack([resize(frame[..., c], shape) for c in range(used)], axis=-1)
    if used < 3:
        img = np.repeat(img, 3, axis=-1)
    return img


def driving_frame(frame, box, frame_shape):
    """A driving video's frame as the models take it: cropped to ``box`` (x, y, w, h; None:
    whole), resized as ``resize_frame``, float32. The pipeline's reading thread and its frame
    process (modules/app/frame_process.py) both make their frames with it."""
    frame = crop(frame, box) if box else frame
    return resize_frame(frame, frame_shape).astype(np.float32)


def image_header(path):
    """(width, height, mode) from the image's header, without decoding its pixels (mode None
    for a TIFF that only tifffile reads). InputError above MAX_PIXELS, and when neither Pillow
    nor tifffile can read the size: decoding a file to learn its size would not be bounded."""
    from PIL import Image

    # Pillow's own bomb guard stops at about 179 Mpx; this limit replaces it.
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():  # the size is judged below, in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                mode = image.mode
    except Image.DecompressionBombError:
        width = height = None
    except Exception:
        width, height, mode = tiff_size(path)
    if width is None or width * height > MAX_PIXELS:
        size = f"{width} x {height} pixels" if width else "more than twice that"
        raise InputError(
            f"Image '{path}' is too large ({size}; the limit is {MAX_PIXELS // 10**6} Mpx). "
            f"Downscale it first."
        )
    return width, height, mode


def tiff_size(path):
    """(width, height, None) of a TIFF's first image from its tags; InputError when the file
    is not a TIFF either. Several pages or slices count as that many images' pixels."""
    import tifffile

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            width, height = int(page.imagewidth), int(page.imagelength)
            depth = max(1, int(getattr(page, "imagedepth", 1)))
    except Exception:
        raise InputError(
            f"Cannot read image '{path}': its size cannot be read from its header (not a PNG, "
            f"JPEG, TIFF or other format Pillow reads). Use a PNG or JPEG."
        ) from None
    return width, height * depth, None


@contextlib.contextmanager
def quiet_tifffile():
    """tifffile logs each damaged tag or strip on stderr; the error, if any, is one line."""
    log = logging.getLogger("tifffile")
    quiet, log.disabled = log.disabled, True
    try:
        yield
    finally:
        log.disabled = quiet


def check_image(path):
    """The checks of ``load_image`` that need no pixels (missing file, not a regular file,
    size unreadable or over the limit)."""
    path = check_file(path, "Image")
    image_header(path)
    return path


def load_image(path):
    """Read an image file with imageio as demo.py does, unresized (uint8 (H, W) or (H, W, C));
    colour modes other than RGB and grey (CMYK, YCbCr, LAB, HSV, bilevel) become RGB or grey."""
    path = check_file(path, "Image")
    header = image_header(path)
    try:
        if header and header[2] in _CONVERT:
            from PIL import Image

            with Image.open(path) as image:
                img = image.convert(_CONVERT[header[2]])
        elif header and header[2] in ("I", "F"):  # 32-bit integer or float grey
            from PIL import Image

            with Image.open(path) as image:
                img = np.asarray(image)
            img = np.clip(img, 0, 65535).astype(np.uint16) if header[2] == "I" else img
        else:
            with quiet_tifffile():
                img = imageio.v2.imread(path)
    except Exception as e:
        raise InputError(
            f"Cannot read image '{path}': not an image file that imageio can read "
            f"({type(e).__name__}). Use a PNG or JPEG."
        ) from None
    img = np.asarray(img)
    if img.dtype.kind == "f":
        img = np.clip(img, 0, 1)
    if img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
        raise InputError(
            f"Image '{path}' has shape {img.shape}, not (H, W) or (H, W, C). "
            f"Use a single RGB or grayscale image."
        )
    return img


def read_image(path, frame_shape=(256, 256)):
    """Read an image file as demo.py does; returns float64 (H, W, 3) in [0, 1]."""
    return resize_frame(load_image(path), frame_shape)
