"""Tensor ops with the exact semantics of the torch functions the original calls.

Every op works on NHWC tensors and uses only ops that TF Lite has as builtins.
Shapes are kept static except the batch dimension, which is always written as -1
so that exported models keep a dynamic batch without SHAPE/PACK ops.
"""

import numpy as np
import tensorflow as tf


def make_coordinate_grid(height, width):
    """``modules.util.make_coordinate_grid``: a (H, W, 2) float32 grid of (x, y) in [-1, 1].

    Computed in numpy float32 with the same operation order as the torch code, so the
    constants are bit-identical to the original's.
    """
    x = np.arange(width, dtype=np.float32)
    y = np.arange(height, dtype=np.float32)
    x = np.float32(2) * (x / np.float32(width - 1)) - np.float32(1)
    y = np.float32(2) * (y / np.float32(height - 1)) - np.float32(1)
    xx = np.broadcast_to(x[None, :], (height, width))
    yy = np.broadcast_to(y[:, None], (height, width))
    return np.stack([xx, yy], axis=-1)


def kp2gaussian(kp_value, height, width, kp_variance):
    """``modules.util.kp2gaussian``: keypoints [B, K, 2] -> gaussian heatmaps [B, H, W, K]."""
    grid = tf.constant(make_coordinate_grid(height, width))  # (H, W, 2)
    mean = kp_value[:, None, None, :, :]  # (B, 1, 1, K, 2)
    diff = grid[None, :, :, None, :] - mean
    squared = diff[..., 0] ** 2 + diff[..., 1] ** 2
    return tf.exp(-0.5 * squared / kp_variance)


def grid_sample(image, grid):
    """``F.grid_sample(image, grid)`` with torch >= 1.3 defaults: bilinear, zero padding,
    ``align_corners=False``.

    image: [B, H, W, C]; grid: [B, N, 2] of (x, y) in [-1, 1] (any number N of points);
    returns [B, N, C]. Zero padding is done by padding the image with one row/column of zeros
    and clamping the sample positions into the padded image: a clamped corner either lands on
    the zero border or gets weight 0, which is exactly what torch gives for outside corners.

    With a static batch (mobile builds) the corners are looked up with 1-D indices into the
    whole batch, which the mobile GPU delegate takes (it refuses GATHER with 2-D indices);
    the values are the same.
    """
    height, width, channels = image.shape[1], image.shape[2], image.shape[3]
    padded = tf.pad(image, [[0, 0], [1, 1], [1, 1], [0, 0]])
    flat = tf.reshape(padded, [-1, (height + 2) * (width + 2), channels])

    # torch's unnormalize for align_corners=False, then +1 for the zero border.
    x = ((grid[..., 0] + 1.0) * width - 1.0) / 2.0 + 1.0
    y = ((grid[..., 1] + 1.0) * height - 1.0) / 2.0 + 1.0
    x = tf.clip_by_value(x, 0.0, float(width + 1))
    y = tf.clip_by_value(y, 0.0, float(height + 1))
    x0 = tf.floor(x)
    y0 = tf.floor(y)
    wx1 = x - x0
    wy1 = y - y0
    wx0 = 1.0 - wx1
    wy0 = 1.0 - wy1
    x0 = tf.cast(x0, tf.int32)
    y0 = tf.cast(y0, tf.int32)
    # At the far clamp (x == width + 1) x1 would leave the padded image; its weight is 0 there.
    x1 = tf.minimum(x0 + 1, width + 1)
    y1 = tf.minimum(y0 + 1, height + 1)

    batch = image.shape[0]
    if batch is None:

        def corner(yi, xi):
            return tf.gather(flat, yi * (width + 2) + xi, batch_dims=1)

    else:
        size = (height + 2) * (width + 2)
        offsets = tf.constant(np.arange(batch, dtype=np.int32)[:, None] * size)
        everything = tf.reshape(flat, [batch * size, channels])

        def corner(yi, xi):
            index = tf.reshape(yi * (width + 2) + xi + offsets, [-1])
            return tf.reshape(tf.gather(everything, index), [batch, -1, channels])

    return (
        corner(y0, x0) * (wy0 * wx0)[..., None]
        + corner(y0, x1) * (wy0 * wx1)[..., None]
        + corner(y1, x0) * (wy1 * wx0)[..., None]
        + corner(y1, x1) * (wy1 * wx1)[..., None]
    )


def grid_sample_2d(image, grid):
    """``F.grid_sample`` with a grid shaped like torch's: image [B, H, W, C], grid
    [B, Ho, Wo, 2] -> [B, Ho, Wo, C]."""
    out_h, out_w = grid.shape[1], grid.shape[2]
    flat = grid_sample(image, tf.reshape(grid, [-1, out_h * out_w, 2]))
    return tf.reshape(flat, [-1, out_h, out_w, image.shape[3]])


def upsample_nearest_2x(x):
    """``F.interpolate(x, scale_factor=2)`` (mode 'nearest'): out[i] = in[floor(i / 2)]."""
    height, width = x.shape[1], x.shape[2]
    return tf.raw_ops.ResizeNearestNeighbor(
        images=x, size=[2 * height, 2 * width], align_corners=False, half_pixel_centers=False
    )


def resize_bilinear(x, height, width):
    """``F.interpolate(x, size=(height, width), mode='bilinear', align_corners=False)``."""
    if x.shape[1] == height and x.shape[2] == width:
        return x
    return tf.raw_ops.ResizeBilinear(
        images=x, size=[height, width], align_corners=False, half_pixel_centers=True
    )


def avg_pool_2x2(x):
    """``nn.AvgPool2d(kernel_size=(2, 2))``: stride 2, no padding, floor mode."""
    return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")


def anti_alias_kernel(channels, scale):
    """The gaussian kernel of ``modules.util.AntiAliasInterpolation2d``, in torch layout
    (channels, 1, k, k), computed in float32 as the original does."""
    sigma = (1 / scale - 1) / 2
    kernel_size = 2 * round(sigma * 4) + 1
    grid = np.arange(kernel_size, dtype=np.float32)
    mean = (kernel_size - 1) / 2
    one_d = np.exp(-((grid - np.float32(mean)) ** 2) / np.float32(2 * sigma**2)).astype(np.float32)
    kernel = one_d[:, None] * one_d[None, :]
    kernel = kernel / np.sum(kernel, dtype=np.float32)
    return np.tile(kernel[None, None], (channels, 1, 1, 1)).astype(np.float32)
