"""The original's building blocks (``modules/util.py``): ResBlock2d, UpBlock2d, DownBlock2d,
SameBlock2d and the Encoder / Decoder / Hourglass, NHWC.

Every block takes its torch module path as ``name`` and names its children after the torch
attributes, so that leaf layer names are the checkpoint's key prefixes.
"""

import keras
import tensorflow as tf

from .layers import BatchNorm2d, Conv2d, Prebuilt
from .ops import avg_pool_2x2


def child(prefix, name):
    """The torch path of a child module: ``child('predictor.encoder', 'down_blocks.0')``."""
    return f"{prefix}.{name}" if prefix else name


class ResBlock2d(Prebuilt, keras.layers.Layer):
    """``modules.util.ResBlock2d``: norm-relu-conv twice, plus the input."""

    def __init__(self, features, kernel_size, padding, name):
        super().__init__(name=name)
        self.conv1 = Conv2d(
            features, features, kernel_size, padding, name=child(name, "conv1"), winograd=True
        )
        self.conv2 = Conv2d(
            features, features, kernel_size, padding, name=child(name, "conv2"), winograd=True
        )
        self.norm1 = BatchNorm2d(features, name=child(name, "norm1"))
        self.norm2 = BatchNorm2d(features, name=child(name, "norm2"))

    def call(self, x):
        out = self.conv1(tf.nn.relu(self.norm1(x)))
        out = self.conv2(tf.nn.relu(self.norm2(out)))
        return out + x


class ConvNorm(Prebuilt, keras.layers.Layer):
    """A conv followed by a batch norm, the parameters of Up/Down/SameBlock2d."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, name=None):
        super().__init__(name=name)
        self.conv = Conv2d(
            in_features, out_features, kernel_size, padding, name=child(name, "conv")
        )
        self.norm = BatchNorm2d(out_features, name=child(name, "norm"))


class UpBlock2d(ConvNorm):
    """``modules.util.UpBlock2d``: nearest 2x upsampling, conv, norm, relu."""

    def call(self, x):
        return self.conv.upsampled(x, then=lambda y: tf.nn.relu(self.norm(y)))


class DownBlock2d(ConvNorm):
    """``modules.util.DownBlock2d``: conv, norm, relu, 2x2 average pooling."""

    def call(self, x):
        return avg_pool_2x2(tf.nn.relu(self.norm(self.conv(x))))


class SameBlock2d(ConvNorm):
    """``modules.util.SameBlock2d``: conv, norm, relu at the same resolution."""

    def call(self, x):
        return tf.nn.relu(self.norm(self.conv(x)))


class Encoder(Prebuilt, keras.layers.Layer):
    """``modules.util.Encoder``: returns the input and every down block's output."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, name=None):
        super().__init__(name=name)
        self.down_blocks = []
        for i in range(num_blocks):
            cin = in_features if i == 0 else min(max_features, block_expansion * (2**i))
            cout = min(max_features, block_expansion * (2 ** (i + 1)))
            self.down_blocks.append(
                DownBlock2d(cin, cout, 3, 1, name=child(name, f"down_blocks.{i}"))
            )

    def call(self, x):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(Prebuilt, keras.layers.Layer):
    """``modules.util.Decoder``: up blocks, each followed by concatenating the skip
    (upsampled features first, as ``torch.cat([out, skip], dim=1)``)."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, name=None):
        super().__init__(name=name)
        self.up_blocks = []
        for n, i in enumerate(range(num_blocks)[::-1]):
            cin = (1 if i == num_blocks - 1 else 2) * min(
                max_features, block_expansion * (2 ** (i + 1))
            )
            cout = min(max_features, block_expansion * (2**i))
            self.up_blocks.append(UpBlock2d(cin, cout, 3, 1, name=child(name, f"up_blocks.{n}")))
        self.out_filters = block_expansion + in_features

    def call(self, features):
        features = list(features)
        out = features.pop()
        for block in self.up_blocks:
            out = tf.concat([block(out), features.pop()], axis=-1)
        return out


class Hourglass(Prebuilt, keras.layers.Layer):
    """``modules.util.Hourglass``: Encoder then Decoder."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, name=None):
        super().__init__(name=name)
        self.encoder = Encoder(
            block_expansion, in_features, num_blocks, max_features, name=child(name, "encoder")
        )
        self.decoder = Decoder(
            block_expansion, in_features, num_blocks, max_features, name=child(name, "decoder")
        )
        self.out_filters = self.decoder.out_filters

    def call(self, x):
        return self.decoder(self.encoder(x))
