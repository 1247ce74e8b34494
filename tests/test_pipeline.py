"""The pipeline's own logic on synthetic keypoints: the --find_best_frame search."""

import numpy as np

from modules.app.pipeline import BestFrame
from modules.hull import convex_hull_area


def hull_area(points):
    return float(convex_hull_area(np.asarray(points, np.float32)))


def test_best_frame_is_the_closest_shape_up_to_position_and_size():
    rng = np.random.default_rng(0)
    source = rng.uniform(-0.8, 0.8, (10, 2)).astype(np.float32)
    frames = rng.uniform(-0.8, 0.8, (8, 10, 2)).astype(np.float32)
    # Frame 2 is the source slightly jittered: the nearest in raw coordinates.
    frames[2] = source + rng.normal(0, 0.03, (10, 2))
    # Frame 5 is the source moved and shrunk: the same shape, so the best frame, although far
    # from the source in raw coordinates.
    frames[5] = 0.4 * source + np.float32([0.3, -0.2])
    raw = ((frames - source) ** 2).sum(axis=(1, 2))
    assert raw.argmin() == 2 and raw[5] > raw[2]

    search = BestFrame({"value": source[None]})
    jacobians = rng.normal(size=(8, 10, 2, 2)).astype(np.float32)
    for start in range(0, 8, 3):  # in batches of 3, as the pipeline hands them over
        search.add({"value": frames[start : start + 3], "jacobian": jacobians[start : start + 3]})
    assert search.index == 5 and search.count == 8
    np.testing.assert_array_equal(search.keypoints["value"], frames[5:6])
    np.testing.assert_array_equal(search.keypoints["jacobian"], jacobians[5:6])
    assert search.distance < 1e-9 * hull_area(source)


def test_best_frame_ties_keep_the_first_and_degenerate_hulls_do_not_fail():
    source = np.float32([[0, 0], [1, 0], [0, 1], [1, 1]])
    line = np.float32([[0, 0], [1, 1], [2, 2], [3, 3]])  # collinear: hull area 0
    search = BestFrame({"value": source[None]})
    search.add({"value": np.stack([line, source * 2, source * 3])})
    assert search.index == 1
