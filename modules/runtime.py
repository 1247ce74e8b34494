"""TensorFlow settings that parity depends on."""


def exact_float32(tf):
    """No TensorFloat-32 on Ampere and newer GPUs (TensorFlow's default there): its 10-bit
    mantissa convolutions would move the output far past the original's float32 noise."""
    tf.config.experimental.enable_tensor_float_32_execution(False)
