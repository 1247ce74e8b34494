"""The keypoint detector (``modules/keypoint_detector.py: KPDetector``), NHWC."""

import keras
import tensorflow as tf

from .blocks import Hourglass
from .layers import AntiAliasInterpolation2d, Conv2d, Prebuilt
from .ops import make_coordinate_grid


class KPDetector(Prebuilt, keras.Model):
    """Image [B, H, W, C] in [0, 1] -> ``{'value': [B, K, 2], 'jacobian': [B, K, 2, 2]}``.

    Heatmaps are a softmax over all pixels (divided by ``temperature``); a keypoint is the
    heatmap-weighted mean of the coordinate grid, its jacobian the heatmap-weighted mean of the
    jacobian maps (one shared map when ``single_jacobian_map``).
    """

    def __init__(self, common, params, name="kp_detector"):
        """``common``, ``params``: the config's ``CommonParams`` and ``KPDetectorParams``
        (modules/convert/config.py)."""
        super().__init__(name=name)
        num_kp, num_channels = common.num_kp, common.num_channels
        pad, scale_factor = params.pad, params.scale_factor
        self.predictor = Hourglass(
            params.block_expansion,
            in_features=num_channels,
            max_features=params.max_features,
            num_blocks=params.num_blocks,
            name="predictor",
        )
        features = self.predictor.out_filters
        self.kp = Conv2d(features, num_kp, 7, pad, name="kp")
        if common.estimate_jacobian:
            self.num_jacobian_maps = 1 if params.single_jacobian_map else num_kp
            self.jacobian = Conv2d(features, 4 * self.num_jacobian_maps, 7, pad, name="jacobian")
        else:
            self.jacobian = None
        self.down = (
            AntiAliasInterpolation2d(num_channels, scale_factor, name="down")
            if scale_factor != 1
            else None
        )
        self.num_kp = num_kp
        self.temperature = params.temperature

    def call(self, image):
        x = self.down(image) if self.down is not None else image
        feature_map = self.predictor(x)
        prediction = self.kp(feature_map)  # [B, h, w, K]
        height, width = prediction.shape[1], prediction.shape[2]

        logits = tf.reshape(prediction, [-1, height * width, self.num_kp]) / self.temperature
        heatmap = tf.nn.softmax(logits, axis=1)  # over pixels, per keypoint
        grid = tf.constant(make_coordinate_grid(height, width).reshape(1, height * width, 1, 2))
        out = {"value": tf.reduce_sum(heatmap[..., None] * grid, axis=1)}

        if self.jacobian is not None:
            jacobian_map = tf.reshape(
                self.jacobian(feature_map), [-1, height * width, self.num_jacobian_maps, 4]
            )
            jacobian = tf.reduce_sum(heatmap[..., None] * jacobian_map, axis=1)  # [B, K, 4]
            out["jacobian"] = tf.reshape(jacobian, [-1, self.num_kp, 2, 2])
        return out
