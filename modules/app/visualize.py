"""``--side_by_side`` frames: source | driving | result, each with its keypoints drawn, as the
original's Visualizer draws them (a disk per keypoint, colours along a rainbow)."""

import colorsys

import numpy as np
from skimage.draw import disk


def keypoint_colors(num_kp):
    """One RGB colour per keypoint, spread along the hue circle like matplotlib's gist_rainbow."""
    return [
        tuple(int(255 * c) for c in colorsys.hsv_to_rgb(0.85 * k / max(num_kp - 1, 1), 1, 1))
        for k in range(num_kp)
    ]


def draw_keypoints(image, kp_value, radius=None):
    """Copy of ``image`` (uint8 [H, W, 3]) with keypoints ``kp_value`` ([K, 2], (x, y) in
    [-1, 1]) drawn as disks; the original maps them to pixels as ``size * (kp + 1) / 2``."""
    image = image.copy()
    height, width = image.shape[:2]
    radius = radius or max(2, round(min(height, width) / 64))
    for (x, y), color in zip(np.asarray(kp_value), keypoint_colors(len(kp_value))):
        rows, cols = disk(
            (height * (y + 1) / 2, width * (x + 1) / 2), radius, shape=(height, width)
        )
        image[rows, cols] = color
    return image


def side_by_side(source, kp_source, driving, kp_driving, result, kp_result):
    """One uint8 frame [H, 3 W, 3]: the three images next to each other with their keypoints."""
    return np.concatenate(
        [
            draw_keypoints(source, kp_source),
            draw_keypoints(driving, kp_driving),
            draw_keypoints(result, kp_result),
        ],
        axis=1,
    )
