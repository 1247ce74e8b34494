"""Pasting an animated face crop back into the full source image, with a feathered edge.

Only the pixels inside the crop's box change: everything outside it is the source image's,
exactly. Inside, the animation is blended over the source with a weight that is 1 in the
middle and falls linearly to 0 over the outer ``FEATHER`` of the box, so no seam shows where
the animated face meets the still photo.
"""

import numpy as np
from skimage.transform import resize

# The feathered band: this fraction of the box's side on each edge.
FEATHER = 0.1


def feather_mask(height, width, feather=FEATHER):
    """float32 (H, W, 1) weights: 1 inside, ramping to 0 towards each edge over ``feather`` of
    the box's shorter side (a box pixel at the very edge keeps a small weight, so the
    blend reaches every pixel of the box and no pixel outside it)."""
    band = max(1.0, feather * min(height, width))

    def ramp(n):
        distance = np.minimum(np.arange(n), np.arange(n)[::-1]) + 0.5  # to the nearest edge
        return np.clip(distance / band, 0.0, 1.0)

    return np.minimum(ramp(height)[:, None], ramp(width)[None, :])[..., None].astype(np.float32)


def paste(image, animated, box, feather=FEATHER):
    """``image`` (uint8 (H, W, 3), the full source) with ``animated`` (float (h, w, 3) in
    [0, 1], any size) resized to ``box`` and blended in; a new uint8 array."""
    x, y, w, h = box
    out = np.array(image, dtype=np.uint8, copy=True)
    face = resize(animated, (h, w), anti_aliasing=h < animated.shape[0] or w < animated.shape[1])
    mask = feather_mask(h, w, feather)
    region = out[y : y + h, x : x + w].astype(np.float32)
    blended = region * (1 - mask) + face.astype(np.float32) * 255 * mask
    out[y : y + h, x : x + w] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return out
