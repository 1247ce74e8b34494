"""Each op against the torch function it reproduces (torch is a test requirement), and the
anti-alias kernel against the buffer stored in the original's checkpoints."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import checkpoint_path

from modules import ops
from modules.convert.checkpoint import read_state_dicts
from modules.layers import (
    FAST_FORMS,
    WEB_LITERT_FORMS,
    AntiAliasInterpolation2d,
    Conv2d,
    fast_convolutions,
)

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


@pytest.mark.parametrize("shape", [(2, 5, 7, 3, 4), (1, 8, 8, 64, 32), (3, 1, 2, 2, 5)])
def test_upsampled_conv3x3_matches_torch_interpolate_then_conv(shape):
    batch, height, width, cin, cout = shape
    x = RNG.standard_normal((batch, height, width, cin)).astype(np.float32)
    weight = RNG.standard_normal((cout, cin, 3, 3)).astype(np.float32)
    want = F.conv2d(F.interpolate(nchw(x), scale_factor=2), torch.from_numpy(weight), padding=1)
    kernel = tf.constant(weight.transpose(2, 3, 1, 0))
    got = ops.upsampled_conv3x3(tf.constant(x), kernel).numpy()
    assert got.shape == (batch, 2 * height, 2 * width, cout)
    # float32 rounding only: the sums reach about 3 * sqrt(9 * cin)
    np.testing.assert_allclose(got, nhwc(want), atol=2e-5 * np.sqrt(cin), rtol=0)


@pytest.mark.parametrize("shape", [(2, 5, 7, 3, 4), (1, 8, 8, 64, 32), (3, 1, 2, 2, 5)])
def test_winograd_conv3x3_matches_torch_conv(shape):
    batch, height, width, cin, cout = shape
    x = RNG.standard_normal((batch, height, width, cin)).astype(np.float32)
    weight = RNG.standard_normal((cout, cin, 3, 3)).astype(np.float32)
    want = F.conv2d(nchw(x), torch.from_numpy(weight), padding=1)
    got = ops.winograd_conv3x3(tf.constant(x), tf.constant(weight.transpose(2, 3, 1, 0)))
    np.testing.assert_allclose(got.numpy(), nhwc(want), atol=2e-5 * np.sqrt(cin), rtol=0)


@pytest.mark.parametrize(
    "shape", [(2, 5, 7, 3, 4), (1, 8, 8, 64, 32), (3, 1, 2, 2, 5), (2, 9, 13, 16, 8)]
)
def test_winograd4_conv3x3_matches_torch_conv(shape):
    """F(4x4, 3x3), also on sizes that are not multiples of 4. Its transforms scale by up to 8
    and 1/24 (about 6x the direct convolution's rounding): 10x the tolerance of F(2x2, 3x3)."""
    batch, height, width, cin, cout = shape
    x = RNG.standard_normal((batch, height, width, cin)).astype(np.float32)
    weight = RNG.standard_normal((cout, cin, 3, 3)).astype(np.float32)
    want = F.conv2d(nchw(x).double(), torch.from_numpy(weight).double(), padding=1)
    got = ops.winograd4_conv3x3(tf.constant(x), tf.constant(weight.transpose(2, 3, 1, 0)))
    np.testing.assert_allclose(got.numpy(), nhwc(want), atol=2e-4 * np.sqrt(cin), rtol=0)


@pytest.mark.parametrize("shape", [(2, 6, 8, 5, 3, 7), (1, 4, 4, 2, 1, 5), (2, 8, 6, 3, 4, 3)])
def test_space_to_depth_conv_matches_torch_conv(shape):
    batch, height, width, cin, cout, size = shape
    x = RNG.standard_normal((batch, height, width, cin)).astype(np.float32)
    weight = RNG.standard_normal((cout, cin, size, size)).astype(np.float32)
    want = F.conv2d(nchw(x), torch.from_numpy(weight), padding=size // 2)
    got = ops.space_to_depth_conv(tf.constant(x), tf.constant(weight.transpose(2, 3, 1, 0)))
    np.testing.assert_allclose(got.numpy(), nhwc(want), atol=1e-5)


def random_conv2d(cin, cout, size, padding, name, winograd=False):
    """A Conv2d with random weights, and those weights as torch tensors (weight, bias)."""
    weight = RNG.standard_normal((cout, cin, size, size)).astype(np.float32)
    bias = RNG.standard_normal(cout).astype(np.float32)
    conv = Conv2d(cin, cout, size, padding, name=name, winograd=winograd)
    conv.kernel.assign(weight.transpose(2, 3, 1, 0))
    conv.bias.assign(bias)
    return conv, torch.from_numpy(weight), torch.from_numpy(bias)


@pytest.mark.parametrize("fast", [(), FAST_FORMS])
@pytest.mark.parametrize("size, cout", [(7, 3), (7, 5), (3, 2)])
def test_conv2d_fast_matches_torch_conv(size, cout, fast):
    """Conv2d picks space_to_depth_conv (7x7 to 3 channels) or the plain convolution."""
    x = RNG.standard_normal((2, 8, 6, 4)).astype(np.float32)
    conv, weight, bias = random_conv2d(4, cout, size, size // 2, "final")
    want = F.conv2d(nchw(x), weight, bias, padding=size // 2)
    with fast_convolutions(fast):
        got = conv(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, nhwc(want), atol=1e-5)


@pytest.mark.parametrize("fast", [(), FAST_FORMS])
@pytest.mark.parametrize("kernel_size, padding", [(3, 1), (5, 2), (3, 0)])
def test_conv2d_upsampled_matches_torch_for_any_kernel(kernel_size, padding, fast):
    x = RNG.standard_normal((2, 5, 6, 4)).astype(np.float32)
    conv, weight, bias = random_conv2d(4, 3, kernel_size, padding, "up_blocks.0.conv")
    want = F.conv2d(F.interpolate(nchw(x), scale_factor=2), weight, bias, padding=padding)
    with fast_convolutions(fast):
        got = conv.upsampled(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, nhwc(want), atol=1e-5)


@pytest.mark.parametrize("fast, atol", [((), 1e-5), (FAST_FORMS, 1e-5), (WEB_LITERT_FORMS, 1e-4)])
def test_conv2d_built_for_winograd_matches_torch(fast, atol):
    """The plain convolution, F(2x2, 3x3) (TensorFlow) and F(4x4, 3x3) (LiteRT.js, whose
    float32 rounding is about 6x the others')."""
    x = RNG.standard_normal((2, 6, 5, 8)).astype(np.float32)
    conv, weight, bias = random_conv2d(8, 8, 3, 1, "bottleneck.r0.conv1", winograd=True)
    want = F.conv2d(nchw(x).double(), weight.double(), bias.double(), padding=1)
    with fast_convolutions(fast):
        got = conv(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, nhwc(want), atol=atol)


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
