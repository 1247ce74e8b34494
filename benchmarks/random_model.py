"""The benchmark's model: the full-size vox architecture with random weights whose
batch-norm statistics are calibrated on the example frames, saved once and reloaded by every
worker."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "config", "vox-256.yaml")
EXAMPLE_SOURCE = os.path.join(ROOT, "example", "source.png")
EXAMPLE_DRIVING = os.path.join(ROOT, "example", "driving.mp4")


def random_model():
    """The vox Keras models with random weights and batch-norm statistics measured on the
    example frames (each layer's running mean/variance set from its own input, in order)."""
    import numpy as np

    from modules.app.images import read_image, resize_frame
    from modules.app.video import VideoReader
    from modules.convert.config import load_config
    from modules.convert.model import Model, build_models
    from modules.convert.weights import load_state_dict, random_state_dict
    from modules.layers import BatchNorm2d

    config = load_config(CONFIG)
    kp_detector, generator = build_models(config)
    load_state_dict(kp_detector, random_state_dict(kp_detector, 0), "kp_detector")
    load_state_dict(generator, random_state_dict(generator, 1), "generator")

    # Enough frames that even the 2x2 bottom of the hourglasses gets a usable variance
    # (a handful of samples per channel gives near-zero variances that blow activations up).
    with VideoReader(EXAMPLE_DRIVING) as reader:
        frames = [resize_frame(f, config.frame_shape) for i, f in enumerate(reader) if i % 6 == 0]
    source = read_image(EXAMPLE_SOURCE, config.frame_shape)
    images = np.stack([source] + frames).astype(np.float32)

    original_call = BatchNorm2d.call

    def calibrating_call(layer, x):
        mean, variance = (v.numpy() for v in __import__("tensorflow").nn.moments(x, [0, 1, 2]))
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(variance)
        return original_call(layer, x)

    BatchNorm2d.call = calibrating_call
    try:
        kp = kp_detector(images)
        pairs = len(frames)
        generator(
            np.repeat(images[:1], pairs, axis=0),
            kp_driving={k: v[1:] for k, v in kp.items()},
            kp_source={k: np.repeat(v[:1], pairs, axis=0) for k, v in kp.items()},
        )
    finally:
        BatchNorm2d.call = original_call
    return Model(config, kp_detector, generator)


def save_weights(model, path):
    """The random model's weights, so that every worker runs the same model without
    calibrating it again (which would inflate its peak memory)."""
    import numpy as np

    from modules.convert.weights import state_dict

    np.savez(
        path,
        **{f"kp_detector/{k}": v for k, v in state_dict(model.keras_kp_detector).items()},
        **{f"generator/{k}": v for k, v in state_dict(model.keras_generator).items()},
    )


def load_weights(path, precision=None):
    """The Keras models of the vox config with the weights ``save_weights`` wrote."""
    import numpy as np

    from modules.convert.config import load_config
    from modules.convert.model import Model, build_models
    from modules.convert.weights import load_state_dict

    config = load_config(CONFIG)
    kp_detector, generator = build_models(config)
    with np.load(path) as data:
        for part, model in (("kp_detector", kp_detector), ("generator", generator)):
            load_state_dict(
                model,
                {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(part + "/")},
                part,
            )
    if precision:
        import tensorflow as tf

        generator.set_precision(getattr(tf, precision))
    return Model(config, kp_detector, generator)


def workdir_model(workdir):
    """The model whose weights ``workdir``/weights.npz holds, made and saved there first if
    it is not there yet."""
    path = os.path.join(workdir, "weights.npz")
    if os.path.isfile(path):
        return load_weights(path)
    model = random_model()
    save_weights(model, path)
    return model
