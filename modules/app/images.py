"""Reading images and resizing frames as the original demo.py does (imageio v2, skimage)."""

import imageio
import numpy as np
from skimage.transform import resize

from modules.app.probe import check_file
from modules.errors import InputError


def resize_frame(frame, frame_shape=(256, 256)):
    """demo.py's `resize(frame, frame_shape)[..., :3]`: float64 (H, W, 3) in [0, 1].

    Grayscale (2-D, 1 channel, or gray + alpha) is repeated to RGB; an alpha channel is dropped.
    """
    img = resize(frame, tuple(frame_shape[:2]))
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] < 3:
        img = np.repeat(img[..., :1], 3, axis=-1)
    return img[..., :3]


def load_image(path):
    """Read an image file with imageio as demo.py does, unresized (uint8 (H, W) or (H, W, C))."""
    path = check_file(path, "Image")
    try:
        img = imageio.v2.imread(path)
    except Exception as e:
        raise InputError(
            f"Cannot read image '{path}': not an image file that imageio can read "
            f"({type(e).__name__}). Use a PNG or JPEG."
        ) from None
    img = np.asarray(img)
    if img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
        raise InputError(
            f"Image '{path}' has shape {img.shape}, not (H, W) or (H, W, C). "
            f"Use a single RGB or grayscale image."
        )
    return img


def read_image(path, frame_shape=(256, 256)):
    """Read an image file as demo.py does; returns float64 (H, W, 3) in [0, 1]."""
    return resize_frame(load_image(path), frame_shape)
