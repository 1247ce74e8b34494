"""Keypoint normalisation for animation (relative motion transfer)."""

import tensorflow as tf

from .hull import convex_hull_area
from .jacobian import inverse_2x2, matmul_2x2


def _on(flag):
    return tf.cast(flag, tf.float32) > 0.5


def process_kp(
    kp_source_value,
    kp_source_jacobian,
    kp_driving_value,
    kp_driving_jacobian,
    kp_initial_value,
    kp_initial_jacobian,
    use_relative_movement,
    use_relative_jacobian,
    adapt_movement_scale,
):
    """Reproduces `normalize_kp` of the original animate.py / demo.py as a pure TF function.

    Source and initial keypoints have batch 1, driving keypoints batch B; values [., K, 2],
    jacobians [., K, 2, 2]. The flags are float32 scalars (0 or 1), so one graph serves every mode.
    Returns {'value': [B, K, 2], 'jacobian': [B, K, 2, 2]}; without jacobians (all three None)
    only 'value'.

    Differences from the original: the movement scale sqrt(area(source)) / sqrt(area(initial))
    uses `modules.hull.convex_hull_area` instead of scipy's ConvexHull, and is 1 when either hull
    is degenerate (scipy raises there). Branches are selected with tf.where, so an inf/NaN in an
    unused branch (singular initial jacobian, zero area) never reaches the output.
    """
    jacobians = (kp_source_jacobian, kp_driving_jacobian, kp_initial_jacobian)
    if any(j is None for j in jacobians) and not all(j is None for j in jacobians):
        raise ValueError("pass all three jacobians or none")
    source = tf.convert_to_tensor(kp_source_value, tf.float32)
    driving = tf.convert_to_tensor(kp_driving_value, tf.float32)
    initial = tf.convert_to_tensor(kp_initial_value, tf.float32)
    relative = _on(use_relative_movement)

    source_area = convex_hull_area(source[0])
    initial_area = convex_hull_area(initial[0])
    valid = tf.logical_and(source_area > 0, initial_area > 0)
    ratio = tf.sqrt(source_area) / tf.sqrt(tf.where(valid, initial_area, 1.0))
    scale = tf.where(tf.logical_and(_on(adapt_movement_scale), valid), ratio, 1.0)

    moved = (driving - initial) * scale + source
    out = {"value": tf.where(relative, moved, driving)}
    if kp_driving_jacobian is None:
        return out

    source_jac, driving_jac, initial_jac = (tf.convert_to_tensor(j, tf.float32) for j in jacobians)
    # As in the original, the jacobian is only made relative together with the movement.
    rotated = matmul_2x2(matmul_2x2(driving_jac, inverse_2x2(initial_jac)), source_jac)
    use_jac = tf.logical_and(relative, _on(use_relative_jacobian))
    out["jacobian"] = tf.where(use_jac, rotated, driving_jac)
    return out
