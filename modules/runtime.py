"""TensorFlow settings that parity depends on, and the scripts' own."""


def exact_float32(tf):
    """No TensorFloat-32 on Ampere and newer GPUs (TensorFlow's default there): its 10-bit
    mantissa convolutions would move the output far past the original's float32 noise."""
    tf.config.experimental.enable_tensor_float_32_execution(False)


def skip_graph_optimizer():
    """run.py's and test.py's models on a CPU: without Grappler, TensorFlow's graph optimizer,
    for the whole process. It rewrites every function on its first call: 0.5-0.7 s of
    test.py's start (the loaded SavedModel functions) and about 0.2 s of run.py's, for no
    measurable gain per frame here (the oneDNN rewrites run without it). Its arithmetic
    rewrites moved a frame by up to 1.1e-4 (random full-size weights); the parity tests
    pass either way. On a GPU it stays on: its layout optimizer serves cuDNN."""
    import tensorflow as tf

    # layers.device_kind() asks the same, but this base module may not import layers
    if not tf.config.get_visible_devices("GPU"):
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
