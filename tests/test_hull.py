"""convex_hull_area against scipy.spatial.ConvexHull, in TF and as a builtins-only TF Lite model."""

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from scipy.spatial import ConvexHull, QhullError

from modules.hull import convex_hull_area


def scipy_area(points):
    """scipy's area per point set; 0 where qhull rejects the set as degenerate."""
    flat = np.asarray(points, np.float64).reshape(-1, *np.shape(points)[-2:])
    areas = []
    for p in flat:
        try:
            areas.append(ConvexHull(p).volume)
        except QhullError:
            areas.append(0.0)
    return np.array(areas).reshape(np.shape(points)[:-2])


def check(points, rtol=2e-5):
    points = np.asarray(points, np.float32)
    got = convex_hull_area(points).numpy()
    assert got.shape == points.shape[:-2]
    assert np.all(np.isfinite(got))
    extent = np.ptp(points, axis=-2).max(axis=-1) ** 2
    np.testing.assert_allclose(got, scipy_area(points), rtol=rtol, atol=1e-6 * extent.max())
    return got


def random_sets(rng, k, n):
    """n point sets of k points from several distributions, [5 * n, k, 2]."""
    uniform = rng.uniform(-1, 1, (n, k, 2))
    normal = rng.normal(0.3, 0.1, (n, k, 2))
    # Keypoints that cluster away from the origin, as in a face in a corner of the frame.
    clustered = rng.uniform(0.6, 0.7, (n, k, 2))
    angles = rng.uniform(0, 2 * np.pi, (n, k))
    circle = np.stack([np.cos(angles), np.sin(angles)], -1) * 0.8
    # Some points on a circle (all hull vertices), the others inside it.
    mixed = np.where(rng.uniform(size=(n, k, 1)) < 0.5, circle, 0.5 * uniform)
    return np.concatenate([uniform, normal, clustered, circle, mixed])


@pytest.mark.parametrize("k", [3, 4, 5, 7, 10, 13, 20])
def test_random_sets_match_scipy(k):
    check(random_sets(np.random.default_rng(k), k, 40))


@pytest.mark.parametrize("k", [3, 5, 10, 16, 20])
def test_integer_grids_with_collinear_points_and_ties(k):
    rng = np.random.default_rng(100 + k)
    # On a 4x4 grid most sets have repeated points and several points on one hull edge; the
    # arithmetic is exact, so the area must be too: a multiple of 1/2, which scipy misses by a few
    # ulps (qhull merges facets in floating point). Some sets are degenerate (scipy raises): 0.
    small = rng.integers(0, 4, (300, k, 2))
    wide = rng.integers(-50, 50, (100, k, 2))
    for sets in (small, wide):
        got = convex_hull_area(sets.astype(np.float32)).numpy()
        np.testing.assert_array_equal(got, np.round(2 * scipy_area(sets)) / 2)


def test_grid_transformed_keeps_ties_within_rounding():
    # A scaled, shifted grid is no longer exactly representable: collinear points become
    # nearly collinear, and the area must stay right anyway.
    rng = np.random.default_rng(7)
    sets = rng.integers(0, 5, (400, 12, 2)) * 0.1 - 0.23
    check(sets)


def test_polygon_with_points_on_every_edge():
    square = np.array([[0, 0], [1, 0], [2, 0], [2, 1], [2, 2], [1, 2], [0, 2], [0, 1], [1, 1]])
    rng = np.random.default_rng(1)
    sets = np.stack([square[rng.permutation(len(square))] for _ in range(20)]) * 0.25 + 0.1
    got = check(sets)
    np.testing.assert_allclose(got, 0.25, rtol=1e-6)


def test_degenerate_sets_give_zero():
    line = np.stack([np.arange(6), 2 * np.arange(6) + 1], -1)
    sets = np.stack(
        [
            line,  # all collinear
            line[::-1],
            np.repeat(line[:2], 3, axis=0),  # two distinct points, repeated
            np.full((6, 2), 0.37),  # all equal
            np.zeros((6, 2)),
            np.stack([np.zeros(6), np.linspace(-1, 1, 6)], -1),  # vertical
        ]
    ).astype(np.float32)
    got = convex_hull_area(sets).numpy()
    np.testing.assert_array_equal(got, 0.0)
    # Collinear up to float32 rounding: tiny at most, never negative or non-finite.
    t = np.random.default_rng(2).uniform(-1, 1, (50, 8, 1))
    nearly = (t * np.array([0.31, 0.77]) + np.array([0.1, -0.2])).astype(np.float32)
    got = convex_hull_area(nearly).numpy()
    assert np.all(np.isfinite(got)) and np.all(got >= 0) and got.max() < 1e-6


@pytest.mark.parametrize("k", [0, 1, 2])
def test_fewer_than_three_points(k):
    got = convex_hull_area(np.ones((4, k, 2), np.float32)).numpy()
    np.testing.assert_array_equal(got, np.zeros(4))


def test_repeated_points():
    triangle = np.array([[0.1, 0.1], [0.9, 0.2], [0.4, 0.8]])
    inner = np.array([[0.4, 0.3], [0.4, 0.3]])
    points = np.concatenate([triangle, triangle, inner, triangle[:1]])
    rng = np.random.default_rng(3)
    sets = np.stack([points[rng.permutation(len(points))] for _ in range(20)])
    check(sets)


def test_leading_dimensions():
    sets = random_sets(np.random.default_rng(4), 10, 6).reshape(5, 3, 2, 10, 2)
    check(sets)
    check(sets[0, 0, 0])  # a single set -> scalar
    # Unknown batch and K at trace time.
    fn = tf.function(convex_hull_area, input_signature=[tf.TensorSpec([None, None, 2])])
    points = sets.reshape(-1, 10, 2).astype(np.float32)
    np.testing.assert_allclose(fn(points).numpy(), scipy_area(points), rtol=2e-5, atol=1e-6)


def test_tflite_builtins_dynamic_batch():
    k = 10
    module = tf.Module()
    module.area = tf.function(
        lambda points: {"area": convex_hull_area(points)},
        input_signature=[tf.TensorSpec([None, k, 2], tf.float32, "points")],
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.area.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    runner = Interpreter(model_content=converter.convert()).get_signature_runner()

    rng = np.random.default_rng(5)
    grids = rng.integers(0, 4, (20, k, 2)).astype(np.float32)
    sets = np.concatenate([random_sets(rng, k, 10), grids]).astype(np.float32)
    for batch in (sets[:1], sets[:3], sets):
        got = runner(points=batch)["area"]
        np.testing.assert_allclose(got, scipy_area(batch), rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(runner(points=grids)["area"], np.round(2 * scipy_area(grids)) / 2)


def test_exact_int32_sign_of_sum_of_products():
    """The orientation arithmetic: exact for factors up to 2^25, in int32 only (TF.js has no
    int64), including ties and near-ties."""
    from modules.hull import _sign_of_sum

    rng = np.random.default_rng(9)
    n = 20000
    a, b, c, d = (rng.integers(-(2**25), 2**25 + 1, n) for _ in range(4))
    c[: n // 4], d[: n // 4] = -a[: n // 4], b[: n // 4] + rng.integers(-1, 2, n // 4)
    got = _sign_of_sum(*(tf.constant(v, tf.int32) for v in (a, b, c, d))).numpy()
    want = np.sign(a.astype(object) * b + c.astype(object) * d).astype(np.int32)
    np.testing.assert_array_equal(got, want)


def test_no_int64_in_the_graph():
    graph = (
        tf.function(convex_hull_area)
        .get_concrete_function(tf.TensorSpec([None, 10, 2]))
        .graph.as_graph_def()
    )
    int64 = [
        n.name
        for n in graph.node
        if any(v.type == tf.int64.as_datatype_enum for v in n.attr.values())
    ]
    assert not int64, int64
