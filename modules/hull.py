"""In-graph convex hull area that converts to TF Lite builtin ops only.

A directed pair (i, j) is a counter-clockwise hull edge when every point lies left of or on the
line i->j; the shoelace formula over those edges gives the area. O(K^3) work, fine for the ten
or so keypoints FOMM uses, with no sort, loop or data-dependent shape.

Which side of a line a point lies on is decided exactly, on the points snapped to an integer grid
of about 2^24 steps across the set. Float32 orientation tests are not consistent for nearly
collinear points (rounding depends on which point is the base), and an edge test built on them
can then lose or double an edge, an error of a large triangle. Snapping moves a point by at most
one step, so the hull found is off by at most a sliver of that width; the area itself is computed
from the original coordinates.

The exact products (up to 2^50) are computed in int32 with 12-bit limbs (`_sign_of_sum`), not in
int64: TF.js has no int64 (its converter turns int64 into int32, where the products overflow and
the hull comes out wrong), and int32 runs the same on TF, TF Lite, ONNX and TF.js.
"""

import math

import tensorflow as tf

_GRID_BITS = 24.0  # grid coordinates and their differences stay within 2^25 (see _sign_of_sum)
_LIMB = 4096  # 2^12


def _at(t, pos, n=3):
    """Expand t [..., K] so that K sits at trailing position pos of n (expand_dims rather than
    `t[..., None]`, which needs ellipsis/new-axis strided slices)."""
    for a in range(n):
        if a != pos:
            t = tf.expand_dims(t, -1 if a > pos else -2)
    return t


def _sign_of_sum(a, b, c, d):
    """The sign (-1, 0 or 1, int32) of ``a * b + c * d``, exactly, for int32 tensors with
    |a|, |b|, |c|, |d| <= 2^25, computed in int32 only.

    Each factor is split into 12-bit limbs, a = ah * 2^12 + al with 0 <= al < 2^12, so that
    the sum is H * 2^24 + M * 2^12 + L with every limb sum within int32 (|H| <= 2^27,
    |M| <= 2^27, |L| <= 2^25). Carrying L into M and M into H leaves 0 <= M, L < 2^12, and the
    sign is then that of H, or whether M or L is non-zero where H is 0.
    """
    ah, al = tf.math.floordiv(a, _LIMB), tf.math.floormod(a, _LIMB)
    bh, bl = tf.math.floordiv(b, _LIMB), tf.math.floormod(b, _LIMB)
    ch, cl = tf.math.floordiv(c, _LIMB), tf.math.floormod(c, _LIMB)
    dh, dl = tf.math.floordiv(d, _LIMB), tf.math.floormod(d, _LIMB)
    high = ah * bh + ch * dh
    middle = ah * bl + al * bh + ch * dl + cl * dh
    low = al * bl + cl * dl
    middle = middle + tf.math.floordiv(low, _LIMB)
    low = tf.math.floormod(low, _LIMB)
    high = high + tf.math.floordiv(middle, _LIMB)
    middle = tf.math.floormod(middle, _LIMB)
    rest = tf.cast(tf.logical_or(middle > 0, low > 0), tf.int32)
    return tf.where(high != 0, tf.sign(high), rest)


def _snap(x, y):
    """Coordinates [..., K] -> int32 grid coordinates, the same grid step along x and y (a uniform
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
    # A log rounding error only halves or doubles the grid; _sign_of_sum has room for either.
    exponent = _GRID_BITS - tf.math.ceil(tf.math.log(extent) * (1.0 / math.log(2.0)))
    scale = tf.pow(2.0, tf.clip_by_value(exponent, -100.0, 100.0))
    return (
        tf.cast(tf.round((x - low_x) * scale), tf.int32),
        tf.cast(tf.round((y - low_y) * scale), tf.int32),
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
    # [..., K, K, K]: sign of (xj - xi) * (yk - yi) - (yj - yi) * (xk - xi), exact
    orient = _sign_of_sum(xj - xi, yk - yi, yi - yj, xk - xi)

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
        _sign_of_sum(xk - xi, xj - xi, yk - yi, yj - yi) > 0,
        _sign_of_sum(xk - xj, xi - xj, yk - yj, yi - yj) > 0,
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
