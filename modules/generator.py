"""The occlusion-aware generator (``modules/generator.py: OcclusionAwareGenerator``), NHWC."""

import keras
import tensorflow as tf

from .blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from .dense_motion import DenseMotionNetwork
from .layers import Conv2d, Prebuilt
from .ops import grid_sample_2d, resize_bilinear


class OcclusionAwareGenerator(Prebuilt, keras.Model):
    """Source image and keypoints -> ``prediction`` [B, H, W, C] (plus the dense motion's
    ``mask``, ``deformation``, ``occlusion_map`` and ``sparse_deformed``).

    Split in two so that a video pays for the source once: ``encode`` (the source's features
    and the dense motion network's downscaled source; independent of the driving frame) and
    ``decode`` (everything that depends on the driving keypoints). ``call`` does both.
    An encoded source of batch 1 serves keypoints of any batch B.
    """

    def __init__(self, common, params, name="generator"):
        """``common``, ``params``: the config's ``CommonParams`` and ``GeneratorParams``
        (modules/convert/config.py)."""
        super().__init__(name=name)
        num_channels = common.num_channels
        block_expansion, max_features = params.block_expansion, params.max_features
        num_down_blocks = params.num_down_blocks
        if params.dense_motion_params is not None:
            self.dense_motion_network = DenseMotionNetwork(
                common, params.dense_motion_params, params.estimate_occlusion_map
            )
        else:
            self.dense_motion_network = None
        self.first = SameBlock2d(
            num_channels, block_expansion, kernel_size=7, padding=3, name="first"
        )
        self.down_blocks = []
        for i in range(num_down_blocks):
            cin = min(max_features, block_expansion * (2**i))
            cout = min(max_features, block_expansion * (2 ** (i + 1)))
            self.down_blocks.append(DownBlock2d(cin, cout, 3, 1, name=f"down_blocks.{i}"))
        self.up_blocks = []
        for i in range(num_down_blocks):
            cin = min(max_features, block_expansion * (2 ** (num_down_blocks - i)))
            cout = min(max_features, block_expansion * (2 ** (num_down_blocks - i - 1)))
            self.up_blocks.append(UpBlock2d(cin, cout, 3, 1, name=f"up_blocks.{i}"))
        features = min(max_features, block_expansion * (2**num_down_blocks))
        self.bottleneck = [
            ResBlock2d(features, 3, 1, name=f"bottleneck.r{i}")
            for i in range(params.num_bottleneck_blocks)
        ]
        self.final = Conv2d(block_expansion, num_channels, 7, 3, name="final")

    def set_precision(self, dtype):
        """Runs the convolutions of the bottleneck and up blocks (the per-frame work, 89% of
        a frame's FLOPs) in ``dtype`` (tf.bfloat16; None: float32). The source encoder runs
        once per video and the dense motion network's masks and sampling grid move every
        pixel, so they stay float32, as do the keypoint, jacobian and grid math."""
        for block in self.bottleneck + self.up_blocks:
            for layer in block._flatten_layers(include_self=False):
                if isinstance(layer, Conv2d):
                    layer.precision = dtype

    def call(self, source_image, kp_driving, kp_source):
        return self.decode(self.encode(source_image), kp_driving, kp_source)

    def encode(self, source_image):
        """The per-video part: ``{'features': [B, h, w, F], 'motion_image': [B, hm, wm, C]}``."""
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        encoded = {"features": out}
        if self.dense_motion_network is not None:
            encoded["motion_image"] = self.dense_motion_network.downscale(source_image)
        return encoded

    def decode(self, encoded, kp_driving, kp_source):
        """The per-frame part, from ``encode``'s output and the keypoints."""
        out = encoded["features"]
        output = {}
        if self.dense_motion_network is not None:
            motion = self.dense_motion_network.from_downscaled(
                encoded["motion_image"], kp_driving=kp_driving, kp_source=kp_source
            )
            output.update(motion)
            height, width = out.shape[1], out.shape[2]
            deformation = resize_bilinear(motion["deformation"], height, width)
            out = out + tf.zeros_like(deformation[:, :1, :1, :1])  # broadcast batch 1 -> B
            out = grid_sample_2d(out, deformation)
            if "occlusion_map" in motion:
                out = out * resize_bilinear(motion["occlusion_map"], height, width)
        else:
            # The original decodes the source's features for every driving frame: B frames in,
            # B predictions out (all equal without motion), also from an encoded batch of 1.
            out = out + tf.zeros_like(kp_driving["value"][:, :1, :1, None])
        for block in self.bottleneck:
            out = block(out)
        for block in self.up_blocks:
            out = block(out)
        output["prediction"] = tf.sigmoid(self.final(out))
        return output
