"""In-graph convex hull area that converts to TF Lite builtin ops only.

A directed pair (i, j) is a counter-clockwise hull edge when every point lies left of or on the
line i->j; the shoelace formula over those edges gives the area. O(K^3) work, fine for the ten
or so keypoints FOMM uses, with no sort, loop or data-dependent shape.

Which side of a line a point lies on is decided exactly, on the points snapped to an integer grid
of about 2^24 steps across the set, in int64. Float32 orientation tests are not consistent for
nearly collinear points (rounding depends on which point is the base), and an edge test built on
them can then lose or double an edge, an error of a large triangle. Snapping moves a point by at
most one step, so the hull found is off by at most a sliver of that width; the area itself is
computed from the original coordinates.
"""

import math

import tensorflow as tf

_GRID_BITS = 24.0  # int64 orientation terms stay below 2^52


def _at(t, pos, n=3):
    """Expand t [..., K] so that K sits at trailing position pos of n (expand_dims rather than
    `t[..., None]`, which needs ellipsis/new-axis strided slices)."""
    for a in range(n):
        if a != pos:
            t = tf.expand_dims(t, -1 if a > pos else -2)
    return t


def _snap(x, y):
    """Coordinates [..., K] -> int64 grid coordinates, the same grid step along x and y (a uniform
    scale keeps every orientation).

    The step is a power of two, so points with few significant bits (integer grids, dyadic
    fractions) land on the grid exactly and stay exactly collinear.
    """
    low_x = tf.reduce_min(x, axis=-1, keepdims=True)
    low_y = tf.reduce_min(y, axis=-1, keepdims=True)
    extent = tf.maximum(
        tf.reduce_max(x, axis=-1, keepdims=True) - low_x,
        tf.reduce_max(y, axis=-1, keepdims=True) - low_y,
    )
    extent = tf.where(extent > 0, extent, tf.ones_like(extent))
    # A log rounding error only halves or doubles the grid; int64 has room for either.
    exponent = _GRID_BITS - tf.math.ceil(tf.math.log(extent) * (1.0 / math.log(2.0)))
    scale = tf.pow(2.0, tf.clip_by_value(exponent, -100.0, 100.0))
    return (
        tf.cast(tf.round((x - low_x) * scale), tf.int64),
        tf.cast(tf.round((y - low_y) * scale), tf.int64),
    )


def convex_hull_area(points):
    """Area of the convex hull of points [..., K, 2] -> [...]; reproduces
    `scipy.spatial.ConvexHull(points).volume` for each set of K points.

    Degenerate sets (fewer than 3 distinct points, all collinear), for which scipy raises, give 0.
    Points on a hull edge and repeated points are counted once (see the edge rules below).
    """
    points = tf.convert_to_tensor(points, tf.float32)
    k = points.shape[-2]
    if k is not None and k < 3:
        return tf.reduce_sum(tf.zeros_like(points), axis=[-2, -1])
    idx = tf.range(k if k is not None else tf.shape(points)[-2])
    x, y = tf.unstack(points, 2, axis=-1)
    qx, qy = _snap(x, y)
    xi, xj, xk = _at(qx, 0), _at(qx, 1), _at(qx, 2)
    yi, yj, yk = _at(qy, 0), _at(qy, 1), _at(qy, 2)
    orient = (xj - xi) * (yk - yi) - (yj - yi) * (xk - xi)  # [..., K, K, K], exact

    # Of repeated points only the first (lowest index) takes part, as an edge end or as a witness.
    same = tf.logical_and(_at(qx, 0, 2) == _at(qx, 1, 2), _at(qy, 0, 2) == _at(qy, 1, 2))
    earlier = _at(idx, 1, 2) < _at(idx, 0, 2)
    first = tf.logical_not(tf.reduce_any(tf.logical_and(same, earlier), axis=-1))
    first_k = _at(first, 2)

    supporting = tf.logical_not(tf.reduce_any(tf.logical_and(orient < 0, first_k), axis=-1))
    # Requiring a point strictly to the left drops every pair of an all-collinear set (area 0,
    # exactly) and the zero-length pairs i == j.
    has_left = tf.reduce_any(tf.logical_and(orient > 0, first_k), axis=-1)
    # Collinear boundary points a, b, c give supporting pairs a->b, b->c and a->c: keep only the
    # shortest ones, i.e. reject a pair with another point strictly inside the segment.
    inside = tf.logical_and(
        (xk - xi) * (xj - xi) + (yk - yi) * (yj - yi) > 0,
        (xk - xj) * (xi - xj) + (yk - yj) * (yi - yj) > 0,
    )
    split = tf.reduce_any(tf.logical_and(orient == 0, inside), axis=-1)
    edge = tf.logical_and(
        tf.logical_and(supporting, has_left),
        tf.logical_and(tf.logical_not(split), tf.logical_and(_at(first, 0, 2), _at(first, 1, 2))),
    )

    # Shoelace relative to point 0: smaller terms than about the origin, and exact on integers.
    x = x - tf.gather(x, [0], axis=-1)
    y = y - tf.gather(y, [0], axis=-1)
    cross = _at(x, 0, 2) * _at(y, 1, 2) - _at(y, 0, 2) * _at(x, 1, 2)
    twice_area = tf.reduce_sum(tf.where(edge, cross, tf.zeros_like(cross)), axis=[-2, -1])
    return tf.maximum(0.5 * twice_area, 0.0)
