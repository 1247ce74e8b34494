"""The dense motion network (``modules/dense_motion.py: DenseMotionNetwork``), NHWC.

Internally the K + 1 motions (background first) sit on an axis after the pixels,
[B, h, w, K + 1, ...], which is the channel order torch gets from its
``cat(...).view(bs, -1, h, w)``: channel ``k * (C + 1) + c``.
"""

import keras
import tensorflow as tf

from .blocks import Hourglass, child
from .jacobian import inverse_2x2, matmul_2x2, matvec_2x2
from .layers import AntiAliasInterpolation2d, Conv2d, Prebuilt
from .ops import grid_sample, kp2gaussian, make_coordinate_grid


class DenseMotionNetwork(Prebuilt, keras.layers.Layer):
    """Source image and keypoints -> mask, deformation, occlusion map, sparse deformed images.

    ``call(source_image [B, H, W, C], kp_driving, kp_source)`` with keypoint dicts holding
    ``value`` [B, K, 2] and optionally ``jacobian`` [B, K, 2, 2]. Returns ``mask`` [B, h, w, K+1],
    ``deformation`` [B, h, w, 2], ``sparse_deformed`` [B, h, w, K+1, C] and, when the model has
    one, ``occlusion_map`` [B, h, w, 1].
    """

    def __init__(self, common, params, estimate_occlusion_map, name="dense_motion_network"):
        """``common``, ``params``: the config's ``CommonParams`` and ``DenseMotionParams``
        (modules/convert/config.py); ``estimate_occlusion_map`` is the generator's."""
        super().__init__(name=name)
        num_kp, num_channels = common.num_kp, common.num_channels
        scale_factor = params.scale_factor
        self.hourglass = Hourglass(
            params.block_expansion,
            in_features=(num_kp + 1) * (num_channels + 1),
            max_features=params.max_features,
            num_blocks=params.num_blocks,
            name=child(name, "hourglass"),
        )
        features = self.hourglass.out_filters
        self.mask = Conv2d(features, num_kp + 1, 7, 3, name=child(name, "mask"))
        self.occlusion = (
            Conv2d(features, 1, 7, 3, name=child(name, "occlusion"))
            if estimate_occlusion_map
            else None
        )
        self.down = (
            AntiAliasInterpolation2d(num_channels, scale_factor, name=child(name, "down"))
            if scale_factor != 1
            else None
        )
        self.num_kp = num_kp
        self.num_channels = num_channels
        self.kp_variance = params.kp_variance

    def downscale(self, source_image):
        """The source image at the network's resolution (the same for every driving frame)."""
        return self.down(source_image) if self.down is not None else source_image

    def call(self, source_image, kp_driving, kp_source):
        return self.from_downscaled(self.downscale(source_image), kp_driving, kp_source)

    def from_downscaled(self, source, kp_driving, kp_source):
        height, width = source.shape[1], source.shape[2]
        heatmap = self.heatmap_representation(height, width, kp_driving, kp_source)
        motions = self.sparse_motions(height, width, kp_driving, kp_source)
        deformed = self.deformed_source(source, motions)

        net_input = tf.concat([heatmap[..., None], deformed], axis=-1)
        net_input = tf.reshape(
            net_input, [-1, height, width, (self.num_kp + 1) * (self.num_channels + 1)]
        )
        prediction = self.hourglass(net_input)

        mask = tf.nn.softmax(self.mask(prediction), axis=-1)
        out = {
            "mask": mask,
            "sparse_deformed": deformed,
            "deformation": tf.reduce_sum(motions * mask[..., None], axis=3),
        }
        if self.occlusion is not None:
            out["occlusion_map"] = tf.sigmoid(self.occlusion(prediction))
        return out

    def heatmap_representation(self, height, width, kp_driving, kp_source):
        """``create_heatmap_representations``: driving minus source gaussians, background 0.
        Returns [B, h, w, K + 1]."""
        gaussian_driving = kp2gaussian(kp_driving["value"], height, width, self.kp_variance)
        gaussian_source = kp2gaussian(kp_source["value"], height, width, self.kp_variance)
        heatmap = gaussian_driving - gaussian_source
        return tf.concat([tf.zeros_like(heatmap[..., :1]), heatmap], axis=-1)

    def sparse_motions(self, height, width, kp_driving, kp_source):
        """``create_sparse_motions``: for each keypoint, the first-order approximation
        ``kp_source + J (z - kp_driving)`` with ``J = J_source J_driving^-1``; identity for the
        background. Returns [B, h, w, K + 1, 2]."""
        identity = tf.constant(make_coordinate_grid(height, width)[:, :, None, :])  # [h, w, 1, 2]
        source_value = kp_source["value"][:, None, None]  # [B, 1, 1, K, 2]
        coordinates = identity[None] - kp_driving["value"][:, None, None]
        if "jacobian" in kp_driving:
            jacobian = matmul_2x2(kp_source["jacobian"], inverse_2x2(kp_driving["jacobian"]))
            coordinates = matvec_2x2(jacobian[:, None, None], coordinates)
        driving_to_source = coordinates + source_value
        background = identity[None] + tf.zeros_like(driving_to_source[:, :1, :1, :1])
        return tf.concat([background, driving_to_source], axis=3)

    def deformed_source(self, source, motions):
        """``create_deformed_source_image``: the source sampled at every sparse motion.
        All K + 1 grids sample the same image, so they go through one grid_sample as one long
        list of points instead of repeating the image K + 1 times. Returns [B, h, w, K + 1, C]."""
        height, width = source.shape[1], source.shape[2]
        points = tf.reshape(motions, [-1, height * width * (self.num_kp + 1), 2])
        source = source + tf.zeros_like(motions[:, :1, :1, :1, 0])  # broadcast batch 1 -> B
        sampled = grid_sample(source, points)
        return tf.reshape(sampled, [-1, height, width, self.num_kp + 1, self.num_channels])
