"""Leaf layers that own the original's parameters: torch Conv2d, BatchNorm2d (eval mode) and
the AntiAliasInterpolation2d buffer.

Each leaf is named after its full torch module path (e.g. ``predictor.encoder.down_blocks.0.conv``)
and lists its ``state_dict`` entries in torch's order and layout via ``torch_state()``, so one
function (``modules.convert.weights``) maps a whole checkpoint by name.
Variables are created in ``__init__`` from the constructor arguments, as torch does, so the
parameter map of a full-size model is known without running it.
"""

import contextlib
import contextvars
from collections import namedtuple

import keras
import numpy as np
import tensorflow as tf

from .ops import (
    anti_alias_kernel,
    space_to_depth_conv,
    upsample_nearest_2x,
    upsampled_conv3x3,
    winograd4_conv3x3,
    winograd_conv3x3,
)


class Prebuilt:
    """Mixin for layers that create their variables in ``__init__`` (as torch modules do):
    there is nothing left for Keras to build."""

    def build(self, *args, **kwargs):
        self.built = True


# variable: the Keras variable to fill (None: a buffer the port computes or ignores);
# expected: for computed buffers, the value the checkpoint must hold.
TorchEntry = namedtuple("TorchEntry", "shape variable expected")


class Conv2d(Prebuilt, keras.layers.Layer):
    """``nn.Conv2d(in_channels, out_channels, kernel_size, padding)`` with stride 1, NHWC."""

    def __init__(
        self, in_channels, out_channels, kernel_size, padding=0, name=None, winograd=False
    ):
        super().__init__(name=name)
        self.winograd = winograd
        kh, kw = _pair(kernel_size)
        ph, pw = _pair(padding)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel = self.add_weight(
            shape=(kh, kw, in_channels, out_channels),
            initializer="zeros",
            trainable=False,
            name="kernel",
        )
        self.bias = self.add_weight(
            shape=(out_channels,), initializer="zeros", trainable=False, name="bias"
        )
        # 'SAME' is torch's symmetric padding whenever it pads by k // 2 on odd kernels,
        # and it avoids a separate PAD op in TF Lite.
        if kh % 2 == 1 and kw % 2 == 1 and (ph, pw) == (kh // 2, kw // 2):
            self.padding = "SAME"
        elif (ph, pw) == (0, 0):
            self.padding = "VALID"
        else:
            self.padding = [[0, 0], [ph, ph], [pw, pw], [0, 0]]

    # None: float32. tf.bfloat16: the convolution itself runs in bfloat16 (oneDNN), its input
    # and kernel rounded to bfloat16 and its output back to float32 before the bias.
    precision = None

    @staticmethod
    def fast(form):
        """Whether ``form`` (one of ``FAST_FORMS``) is on, within ``fast_convolutions()``; read
        when a tf.function traces. "subpixel": a 3x3, padding 1 convolution of an upsampled
        image runs on the low-resolution image (``upsampled``); "space_to_depth": a 5x5 or
        larger one with at most 4 output channels on the space-to-depth image; "winograd":
        one built with ``winograd=True`` (the generator's bottleneck) by Winograd's
        F(2x2, 3x3); "winograd4": the same by F(4x4, 3x3)."""
        return form in _FAST.get()

    def call(self, x):
        return self.convolve(x, self.kernel, self.padding) + self.bias

    def upsampled(self, x, then=None):
        """``then(self(upsample_nearest_2x(x)))``, ``then`` a per-channel step (the up block's
        norm and relu; default none). With the "subpixel" form, a 3x3, padding 1 convolution
        of an input of 8x8 pixels or more runs on the low-resolution ``x``
        (``ops.upsampled_conv3x3``: 2.25x fewer multiply-adds; on smaller inputs, where the
        kernel outweighs the image, building its four 2x2 kernels costs more than it saves),
        ``then`` on each phase before they are interleaved, so that TF Lite folds the norm
        into the convolutions."""
        then = then or (lambda y: y)
        small = x.shape[1] * x.shape[2] < 64
        plain = not self.fast("subpixel") or small
        if plain or self.kernel.shape[:2] != (3, 3) or self.padding != "SAME":
            return then(self(upsample_nearest_2x(x)))

        def phase(x, kernel, padding):
            return then(self.convolve(x, kernel, padding) + self.bias)

        return upsampled_conv3x3(x, self.kernel, phase)

    def convolve(self, x, kernel, padding):
        if self.precision is None:
            if padding == "SAME":
                if self.winograd and kernel.shape[:2] == (3, 3):
                    if self.fast("winograd4"):
                        return winograd4_conv3x3(x, kernel)
                    if self.fast("winograd"):
                        return winograd_conv3x3(x, kernel)
                few_outputs = kernel.shape[0] == kernel.shape[1] >= 5 and kernel.shape[3] <= 4
                if few_outputs and _even(x) and self.fast("space_to_depth"):
                    return space_to_depth_conv(x, kernel)
            return tf.nn.conv2d(x, kernel, strides=1, padding=padding)
        y = tf.nn.conv2d(
            tf.cast(x, self.precision), tf.cast(kernel, self.precision), 1, padding=padding
        )
        return tf.cast(y, tf.float32)

    def torch_state(self):
        kh, kw, cin, cout = self.kernel.shape
        return {
            "weight": TorchEntry((cout, cin, kh, kw), self.kernel, None),
            "bias": TorchEntry((cout,), self.bias, None),
        }


# The faster forms of a convolution (``Conv2d.fast``). TF Lite gets all but Winograd: its
# 6-D transposes and batched matrix products are not for the mobile GPU delegate, and int8
# weights would lose its speed. ONNX and TF.js get none (TF.js has no SpaceToDepth).
# TensorFlow on a GPU gets space-to-depth only: cuDNN picks its own algorithms, and on an
# H200 (XLA, batch 8) Winograd made the per-frame work 7.4-7.9x slower, sub-pixel changed it
# by -4% to +1% and space-to-depth made it 8-12% faster (docs/speed.md, GPU).
FAST_FORMS = ("subpixel", "space_to_depth", "winograd")
TFLITE_FORMS = ("subpixel", "space_to_depth")
# LiteRT.js (build.py --web_litert): float32 with F(4x4, 3x3) runs the bottleneck twice as
# fast as the direct convolution in WebAssembly, where int8 is barely faster than float32.
WEB_LITERT_FORMS = (*TFLITE_FORMS, "winograd4")
GPU_FORMS = ("space_to_depth",)
# What TensorFlow gets on each kind of device (run.py, the SavedModels).
DEVICE_FORMS = {"cpu": FAST_FORMS, "gpu": GPU_FORMS}


def device_kind():
    """The kind of device TensorFlow runs on here: "gpu" where it may use one (the scripts'
    ``--cpu`` hides it), else "cpu"."""
    return "gpu" if tf.config.get_visible_devices("GPU") else "cpu"


# A context variable, not a layer attribute: each thread sees its own setting, so a signature
# can be traced in the background while another runs (``Model.trace_in_background``).
_FAST = contextvars.ContextVar("fast_convolutions", default=())


@contextlib.contextmanager
def fast_convolutions(forms=FAST_FORMS):
    """Within the block, every ``Conv2d`` uses the faster ``forms`` of its convolution
    (``Conv2d.fast``). Measured on TensorFlow's CPU kernels (2-core AVX-512, batch 4): an up
    block's convolution 1.5-2x faster, a bottleneck convolution (64x64, 256 channels) 1.26x,
    the generator's final one 2.1x; where they were slower (Winograd on every other
    convolution shape of the models, sub-pixel on 2x2 and 4x4 inputs) they are not used. On
    LiteRT's XNNPACK the sub-pixel up blocks and the space-to-depth final convolution are
    about 2x faster as well, for about 5% larger models (16 instead of 9 taps per kernel)."""
    token = _FAST.set(tuple(forms))
    try:
        yield
    finally:
        _FAST.reset(token)


class BatchNorm2d(Prebuilt, keras.layers.Layer):
    """``nn.BatchNorm2d(features, affine=True)`` in eval mode (running statistics, eps 1e-5)."""

    epsilon = 1e-5

    def __init__(self, features, name=None):
        super().__init__(name=name)
        self.gamma = self.add_weight(
            shape=(features,), initializer="ones", trainable=False, name="gamma"
        )
        self.beta = self.add_weight(
            shape=(features,), initializer="zeros", trainable=False, name="beta"
        )
        self.moving_mean = self.add_weight(
            shape=(features,), initializer="zeros", trainable=False, name="moving_mean"
        )
        self.moving_variance = self.add_weight(
            shape=(features,), initializer="ones", trainable=False, name="moving_variance"
        )

    def call(self, x):
        scale = self.gamma * tf.math.rsqrt(self.moving_variance + self.epsilon)
        return x * scale + (self.beta - self.moving_mean * scale)

    def torch_state(self):
        features = (self.gamma.shape[0],)
        return {
            "weight": TorchEntry(features, self.gamma, None),
            "bias": TorchEntry(features, self.beta, None),
            "running_mean": TorchEntry(features, self.moving_mean, None),
            "running_var": TorchEntry(features, self.moving_variance, None),
            # Only counts training steps; absent from checkpoints older than torch 0.4.1.
            "num_batches_tracked": TorchEntry((), None, None),
        }


class AntiAliasInterpolation2d(Prebuilt, keras.layers.Layer):
    """``modules.util.AntiAliasInterpolation2d``: gaussian blur then keep every
    ``int(1 / scale)``-th pixel.

    The blur-then-subsample is one strided depthwise convolution: the strided outputs are
    exactly the pixels ``[::int_inv_scale]`` that torch keeps, without computing the others.
    """

    def __init__(self, channels, scale, name=None):
        super().__init__(name=name)
        self.torch_kernel = anti_alias_kernel(channels, scale)
        size = self.torch_kernel.shape[-1]
        self.ka = size // 2
        self.kb = self.ka - 1 if size % 2 == 0 else self.ka
        self.stride = int(1 / scale)
        # (C, 1, k, k) -> depthwise (k, k, C, 1)
        self.kernel = tf.constant(np.transpose(self.torch_kernel, (2, 3, 0, 1)))

    def call(self, x):
        x = tf.pad(x, [[0, 0], [self.ka, self.kb], [self.ka, self.kb], [0, 0]])
        return tf.nn.depthwise_conv2d(
            x, self.kernel, strides=[1, self.stride, self.stride, 1], padding="VALID"
        )

    def torch_state(self):
        return {"weight": TorchEntry(self.torch_kernel.shape, None, self.torch_kernel)}


def _even(x):
    return x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)
