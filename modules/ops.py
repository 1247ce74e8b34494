"""Tensor ops with the exact semantics of the torch functions the original calls.

Every op works on NHWC tensors and uses only ops that TF Lite has as builtins.
Shapes are kept static except the batch dimension, which is always written as -1
so that exported models keep a dynamic batch without SHAPE/PACK ops.

``upsampled_conv3x3``, ``winograd_conv3x3`` and ``space_to_depth_conv`` compute a torch
convolution in fewer or faster steps; ``layers.fast_convolutions`` says which targets use
them (Winograd F(2x2, 3x3) only TensorFlow itself, F(4x4, 3x3) only LiteRT.js; ONNX and
TF.js none).
"""

import functools

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


# Output phase (r, c) of ``upsampled_conv3x3`` reads input pixels i - 1 + r and i + r along
# each axis: its 2x2 kernel is padded by one pixel before when r = 0, after when r = 1.
SUBPIXEL_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))
SUBPIXEL_PADDING = tuple([[0, 0], [1 - r, r], [1 - c, c], [0, 0]] for r, c in SUBPIXEL_PHASES)


def subpixel_kernels(kernel):
    """The four 2x2 kernels (one per ``SUBPIXEL_PHASES`` entry) that give a 3x3, padding 1
    convolution of a nearest-2x-upsampled image from the low-resolution image.

    Upsampling repeats each pixel twice along each axis, so the taps (k0, k1, k2) of an even
    output row see input rows (i - 1, i, i) and those of an odd one (i, i, i + 1): the repeated
    pixel's taps are summed, (k0, k1 + k2) and (k0 + k1, k2).
    """

    def taps(k, axis):
        a, b, c = tf.unstack(k, axis=axis)
        return tf.stack([a, b + c], axis), tf.stack([a + b, c], axis)

    return [column for row in taps(kernel, 0) for column in taps(row, 1)]


def conv2d(x, kernel, padding):
    """A stride-1 ``tf.nn.conv2d``."""
    return tf.nn.conv2d(x, kernel, strides=1, padding=padding)


def upsampled_conv3x3(x, kernel, conv=conv2d):
    """``F.conv2d(F.interpolate(x, scale_factor=2), weight, padding=1)`` (nearest upsampling,
    then a 3x3 convolution without bias) computed on the low-resolution input: one 2x2
    convolution per output phase, interleaved by ``depth_to_space``. That is 16 multiply-adds
    per input pixel and channel pair instead of 36; the results differ from the upsampled
    convolution by float32 rounding only (summed taps, another summation order).

    ``conv(x, kernel, padding)`` runs each convolution (stride 1), and may add per-channel
    steps after it.
    """
    phases = [
        conv(x, k, padding)
        for k, padding in zip(subpixel_kernels(kernel), SUBPIXEL_PADDING, strict=True)
    ]
    return tf.nn.depth_to_space(tf.concat(phases, axis=-1), 2)


# Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for
# Convolutional Neural Networks", 2016): a 4x4 input tile d and a 3x3 kernel g give the 2x2
# output tile A^T [(G g G^T) * (B^T d B)] A.
WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)


@functools.lru_cache
def _winograd_input_taps(channels):
    """The 16 depthwise kernels (4, 4, channels, 1) of B^T d B, one per tile element."""
    taps = np.einsum("ui,wj->uwij", WINOGRAD_BT, WINOGRAD_BT).reshape(16, 4, 4, 1, 1)
    return [np.tile(tap, [1, 1, channels, 1]) for tap in taps]


def winograd_conv3x3(x, kernel):
    """``F.conv2d(x, weight, padding=1)`` for a 3x3 kernel (no bias), by Winograd's F(2x2, 3x3):
    each 2x2 output tile costs 16 multiply-adds per channel pair instead of 36, as 16 matrix
    products. Its float32 rounding is as small as the direct convolution's (the transforms
    only add, subtract and halve).

    The input transform runs as 16 stride-2 depthwise convolutions, one per tile element
    (faster on oneDNN than one with 16 outputs per channel, and already in the layout of the
    products); the output transform as one product with the 4x16 matrix kron(A^T, A^T).
    """
    _, height, width, channels = x.shape
    cout = kernel.shape[3]
    tiles_h, tiles_w = (height + 1) // 2, (width + 1) // 2
    x = tf.pad(x, [[0, 0], [1, 1 + height % 2], [1, 1 + width % 2], [0, 0]])
    # The raw op: tf.nn.depthwise_conv2d's Python wrapper made the full-size generator's trace
    # 0.1 s slower.
    tiles = tf.stack(
        [
            tf.raw_ops.DepthwiseConv2dNative(
                input=x, filter=tap, strides=[1, 2, 2, 1], padding="VALID"
            )
            for tap in _winograd_input_taps(channels)
        ]
    )
    g = tf.constant(WINOGRAD_G)
    u = tf.reshape(tf.einsum("ui,ijco,wj->uwco", g, kernel, g), [16, channels, cout])
    products = tf.matmul(tf.reshape(tiles, [16, -1, channels]), u)
    out = tf.matmul(np.kron(WINOGRAD_AT, WINOGRAD_AT), tf.reshape(products, [16, -1]))
    out = tf.transpose(tf.reshape(out, [2, 2, -1, tiles_h, tiles_w, cout]), [2, 3, 0, 4, 1, 5])
    return tf.reshape(out, [-1, 2 * tiles_h, 2 * tiles_w, cout])[:, :height, :width]


# Winograd's F(4x4, 3x3) (same paper): a 6x6 input tile gives a 4x4 output tile, 36
# multiply-adds per channel pair instead of 144. Its transforms scale by up to 8 and 1/24, so
# its float32 rounding is about 6x the direct convolution's (on a 256-channel bottleneck
# convolution, at most 7e-5 of the output's RMS against 1.1e-5).
WINOGRAD4_BT = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    np.float32,
)
WINOGRAD4_G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    np.float32,
)
WINOGRAD4_AT = np.array(
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    np.float32,
)


@functools.lru_cache
def _winograd4_taps(channels):
    """Depthwise kernels of B^T d B done separably: six (6, 1, channels, 1) along the rows, six
    (1, 6, channels, 1) along the columns."""
    rows = [np.tile(r.reshape(6, 1, 1, 1), [1, 1, channels, 1]) for r in WINOGRAD4_BT]
    columns = [np.tile(r.reshape(1, 6, 1, 1), [1, 1, channels, 1]) for r in WINOGRAD4_BT]
    return rows, columns


def winograd4_conv3x3(x, kernel):
    """``F.conv2d(x, weight, padding=1)`` for a 3x3 kernel (no bias), by Winograd's F(4x4, 3x3):
    2.25x fewer multiply-adds than ``winograd_conv3x3``, for about 6x its float32 rounding.

    The input transform runs separably as 6 row and 36 column depthwise convolutions of
    stride 4, the 36 products as one batched matrix product, the output transform as one
    product with the 16x36 matrix kron(A^T, A^T). The batch is read from the static shape
    where there is one: the TF Lite converter rejects these reshapes with a -1 in them.
    """
    batch, height, width, channels = x.shape
    batch = tf.shape(x)[0] if batch is None else batch
    cout = kernel.shape[3]
    tiles_h, tiles_w = (height + 3) // 4, (width + 3) // 4
    x = tf.pad(x, [[0, 0], [1, 4 * tiles_h + 1 - height], [1, 4 * tiles_w + 1 - width], [0, 0]])
    row_taps, column_taps = _winograd4_taps(channels)
    tiles = []
    for row_tap in row_taps:
        rows = tf.raw_ops.DepthwiseConv2dNative(
            input=x, filter=row_tap, strides=[1, 4, 1, 1], padding="VALID"
        )
        for column_tap in column_taps:
            tiles.append(
                tf.raw_ops.DepthwiseConv2dNative(
                    input=rows, filter=column_tap, strides=[1, 1, 4, 1], padding="VALID"
                )
            )
    g = tf.constant(WINOGRAD4_G)
    u = tf.reshape(tf.einsum("ui,ijco,wj->uwco", g, kernel, g), [36, channels, cout])
    count = batch * tiles_h * tiles_w
    products = tf.matmul(tf.reshape(tf.stack(tiles), [36, count, channels]), u)
    at = np.kron(WINOGRAD4_AT, WINOGRAD4_AT)
    out = tf.matmul(at, tf.reshape(products, [36, count * cout]))
    out = tf.reshape(out, [4, 4, batch * tiles_h, tiles_w, cout])
    out = tf.transpose(out, [2, 0, 3, 1, 4])
    out = tf.reshape(out, [batch, 4 * tiles_h, 4 * tiles_w, cout])
    return out[:, :height, :width]


def space_to_depth_conv(x, kernel):
    """``tf.nn.conv2d(x, kernel, 1, 'SAME')`` for an odd kxk kernel (torch's padding k // 2) on
    an even-sized image, computed on ``space_to_depth(x, 2)``: each position yields a 2x2
    block of outputs from a (k // 2 + 1)^2 kernel over 4x the channels. It costs about 1.3x
    the multiply-adds, but oneDNN runs it about twice as fast when the convolution has only
    a few output channels (the generator's final 7x7 convolution to 3 channels)."""
    size, _, cin, cout = kernel.shape
    pad, blocks = size // 2, size // 2 + 1
    phases = []
    for r, c in SUBPIXEL_PHASES:
        k = tf.pad(kernel, [[r, 2 * blocks - size - r], [c, 2 * blocks - size - c], [0, 0], [0, 0]])
        k = tf.transpose(tf.reshape(k, [blocks, 2, blocks, 2, cin, cout]), [0, 2, 1, 3, 4, 5])
        phases.append(tf.reshape(k, [blocks, blocks, 4 * cin, cout]))
    kernel = tf.reshape(tf.stack(phases, axis=-2), [blocks, blocks, 4 * cin, 4 * cout])
    x = tf.nn.space_to_depth(tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]), 2)
    return tf.nn.depth_to_space(tf.nn.conv2d(x, kernel, strides=1, padding="VALID"), 2)


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
