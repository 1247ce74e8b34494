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


# matplotlib's gist_rainbow (points and RGB at them), which the original's configs name as
# visualizer_params.colormap; matplotlib is not a dependency, so its 256-entry table is rebuilt
# here as matplotlib builds it.
GIST_RAINBOW = (
    (0.000, (1.00, 0.00, 0.16)),
    (0.030, (1.00, 0.00, 0.00)),
    (0.215, (1.00, 1.00, 0.00)),
    (0.400, (0.00, 1.00, 0.00)),
    (0.586, (0.00, 1.00, 1.00)),
    (0.770, (0.00, 0.00, 1.00)),
    (0.954, (1.00, 0.00, 1.00)),
    (1.000, (1.00, 0.00, 0.75)),
)


def colormap(name):
    """``plt.get_cmap(name)`` as a function of x in [0, 1] -> RGB: gist_rainbow built in, any
    other name through matplotlib when it is installed."""
    if name == "gist_rainbow":
        points = np.array([x for x, _ in GIST_RAINBOW])
        colors = np.array([c for _, c in GIST_RAINBOW])
        table = np.stack(
            [np.interp(np.linspace(0, 1, 256), points, colors[:, i]) for i in range(3)], 1
        )
        # matplotlib's lookup: index int(x * N), the last entry for x == 1.
        return lambda x: table[min(int(x * 256), 255)]
    try:
        import matplotlib

        cmap = matplotlib.colormaps[name]
    except (ImportError, KeyError):
        from ..errors import ConfigError

        raise ConfigError(
            f"unknown visualizer_params.colormap '{name}': gist_rainbow is built in, other "
            f"names need matplotlib installed"
        ) from None
    return lambda x: np.asarray(cmap(x))[:3]


class Visualizer:
    """The original's logger.py ``Visualizer`` for its dataset modes: per frame, columns of
    source (with its keypoints), driving frame (with its keypoints), the source warped by the
    dense deformation, the prediction (with the normalized keypoints, in animate mode), the
    prediction, and the occlusion map; float images in [0, 1] made uint8 as
    ``(255 * grid).astype(uint8)``."""

    def __init__(self, kp_size=5, draw_border=False, colormap="gist_rainbow"):
        self.kp_size = kp_size
        self.draw_border = draw_border
        self.colormap = globals()["colormap"](colormap)

    def with_keypoints(self, image, kp_value):
        image = image.copy()
        height, width = image.shape[:2]
        for k, (x, y) in enumerate(np.asarray(kp_value)):
            # logger.py: spatial_size * (kp + 1) / 2, a disk of kp_size at (row y, column x)
            rows, cols = disk(
                (height * (y + 1) / 2, width * (x + 1) / 2), self.kp_size, shape=(height, width)
            )
            image[rows, cols] = self.colormap(k / len(kp_value))
        return image

    def column(self, image):
        if self.draw_border:
            image = image.copy()
            image[:, [0, -1]] = 1
        return image

    def frame(self, columns):
        """``columns``: float images [H, W, 3], or (image, keypoints [K, 2]) to draw on."""
        drawn = [
            self.column(self.with_keypoints(*c) if isinstance(c, tuple) else c) for c in columns
        ]
        return (255 * np.concatenate(drawn, axis=1)).astype(np.uint8)
