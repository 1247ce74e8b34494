"""TensorFlow / Keras port of the First Order Motion Model (Siarohin et al., NeurIPS 2019),
installed as the package ``fomm_tf`` (a checkout imports it as ``modules``).

``from fomm_tf import Animator`` animates images (modules/animator.py), ``VideoWriter`` writes
frames to a video file; ``load_model`` gives the Keras models themselves. TensorFlow is
imported only when models are asked for, so that the scripts can check their inputs and fail
fast without it.
"""

__all__ = ["Animator", "VideoWriter", "load_model"]


def __getattr__(name):
    if name == "load_model":
        from .convert.model import load_model

        return load_model
    if name == "Animator":
        from .animator import Animator

        return Animator
    if name == "VideoWriter":
        from .app.video_writer import VideoWriter

        return VideoWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
