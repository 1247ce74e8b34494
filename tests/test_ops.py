"""Each op against the torch function it reproduces (torch is a test requirement), and the
anti-alias kernel against the buffer stored in the original's checkpoints."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import checkpoint_path

from modules import ops
from modules.convert.checkpoint import read_state_dicts
from modules.layers import AntiAliasInterpolation2d

torch = pytest.importorskip("torch")
F = torch.nn.functional
RNG = np.random.default_rng(0)


def nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t):
    return t.numpy().transpose(0, 2, 3, 1)


def test_grid_sample_matches_torch_inside_at_edges_and_outside():
    image = RNG.random((2, 9, 13, 5), dtype=np.float32)
    grid = RNG.uniform(-1.4, 1.4, size=(2, 7, 11, 2)).astype(np.float32)
    # exact pixel centres, the borders and far outside points
    grid[0, 0, :5] = [[-1, -1], [1, 1], [-1 - 1 / 13, 0], [1 + 1 / 13, 0.3], [5, -7]]
    grid[1, 0, :4] = [
        [(2 * 3 + 1) / 13 - 1, (2 * 4 + 1) / 9 - 1],
        [0, 1 + 1 / 9],
        [-1.0001, 0],
        [0, 0],
    ]
    want = F.grid_sample(
        nchw(image),
        torch.from_numpy(grid),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    got = ops.grid_sample_2d(tf.constant(image), tf.constant(grid)).numpy()
    np.testing.assert_allclose(got, nhwc(want), atol=1e-6)


def test_upsample_nearest_2x_matches_torch():
    x = RNG.random((2, 5, 7, 3), dtype=np.float32)
    want = F.interpolate(nchw(x), scale_factor=2)
    np.testing.assert_array_equal(ops.upsample_nearest_2x(tf.constant(x)).numpy(), nhwc(want))


@pytest.mark.parametrize("size", [(16, 24), (5, 3), (8, 12)])
def test_resize_bilinear_matches_torch(size):
    x = RNG.random((2, 8, 12, 2), dtype=np.float32)
    want = F.interpolate(nchw(x), size=size, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(
        ops.resize_bilinear(tf.constant(x), *size).numpy(), nhwc(want), atol=1e-6
    )


def test_avg_pool_2x2_matches_torch_on_odd_sizes():
    x = RNG.random((2, 9, 7, 4), dtype=np.float32)
    want = torch.nn.AvgPool2d(kernel_size=(2, 2))(nchw(x))
    np.testing.assert_allclose(ops.avg_pool_2x2(tf.constant(x)).numpy(), nhwc(want), atol=1e-7)


def test_coordinate_grid_matches_torch():
    h, w = 5, 8
    x = 2 * (torch.arange(w).float() / (w - 1)) - 1
    y = 2 * (torch.arange(h).float() / (h - 1)) - 1
    want = torch.stack([x.view(1, -1).repeat(h, 1), y.view(-1, 1).repeat(1, w)], dim=2)
    np.testing.assert_array_equal(ops.make_coordinate_grid(h, w), want.numpy())


def test_kp2gaussian():
    kp = RNG.uniform(-1, 1, size=(2, 3, 2)).astype(np.float32)
    got = ops.kp2gaussian(tf.constant(kp), 6, 4, 0.01).numpy()
    grid = ops.make_coordinate_grid(6, 4)
    for b in range(2):
        for k in range(3):
            d = grid - kp[b, k]
            np.testing.assert_allclose(
                got[b, :, :, k], np.exp(-0.5 * (d**2).sum(-1) / 0.01), rtol=1e-5, atol=1e-7
            )


def test_anti_alias_kernel_equals_the_checkpoint_buffer():
    generator_state, kp_state = read_state_dicts(checkpoint_path("tiny-vox"))
    for stored in (kp_state["down.weight"], generator_state["dense_motion_network.down.weight"]):
        np.testing.assert_allclose(ops.anti_alias_kernel(3, 0.25), stored, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("scale, size", [(0.25, 256), (0.25, 30), (0.5, 17), (0.3, 20)])
def test_anti_alias_matches_torch_pad_conv_and_slice(scale, size):
    layer = AntiAliasInterpolation2d(3, scale)
    x = RNG.random((2, size, size, 3), dtype=np.float32)
    kernel = torch.from_numpy(ops.anti_alias_kernel(3, scale))
    out = F.pad(nchw(x), (layer.ka, layer.kb, layer.ka, layer.kb))
    out = F.conv2d(out, weight=kernel, groups=3)
    step = int(1 / scale)
    want = out[:, :, ::step, ::step]
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), nhwc(want), atol=1e-6)
