"""Closed-form 2x2 matrix ops on tensors of shape [..., 2, 2].

`tf.linalg.inv` and high-rank `tf.matmul` become Flex ops in TF Lite; written out element by
element these use only builtin elementwise ops, unpack and pack.
"""

import tensorflow as tf


def _entries(m):
    row0, row1 = tf.unstack(m, 2, axis=-2)
    m00, m01 = tf.unstack(row0, 2, axis=-1)
    m10, m11 = tf.unstack(row1, 2, axis=-1)
    return m00, m01, m10, m11


def _assemble(m00, m01, m10, m11):
    return tf.stack([tf.stack([m00, m01], axis=-1), tf.stack([m10, m11], axis=-1)], axis=-2)


def inverse_2x2(m):
    """Inverse of every 2x2 matrix in `m` [..., 2, 2]; reproduces `torch.inverse`.

    A singular matrix gives inf/NaN entries (torch raises instead).
    """
    m00, m01, m10, m11 = _entries(tf.convert_to_tensor(m))
    det = m00 * m11 - m01 * m10
    # Dividing each entry (rather than multiplying by 1/det) keeps one rounding per entry.
    return _assemble(m11 / det, -m01 / det, -m10 / det, m00 / det)


def matmul_2x2(a, b):
    """`a @ b` for [..., 2, 2] matrices with broadcast leading dims; reproduces `torch.matmul`."""
    a00, a01, a10, a11 = _entries(tf.convert_to_tensor(a))
    b00, b01, b10, b11 = _entries(tf.convert_to_tensor(b))
    return _assemble(
        a00 * b00 + a01 * b10, a00 * b01 + a01 * b11, a10 * b00 + a11 * b10, a10 * b01 + a11 * b11
    )


def matvec_2x2(m, v):
    """`m @ v` for m [..., 2, 2] and v [..., 2] -> [..., 2]; reproduces
    `torch.matmul(m, v.unsqueeze(-1)).squeeze(-1)`."""
    m00, m01, m10, m11 = _entries(tf.convert_to_tensor(m))
    v0, v1 = tf.unstack(tf.convert_to_tensor(v), 2, axis=-1)
    return tf.stack([m00 * v0 + m01 * v1, m10 * v0 + m11 * v1], axis=-1)
