"""TensorFlow / Keras port of the First Order Motion Model (Siarohin et al., NeurIPS 2019).

``from modules import load_model``; TensorFlow is imported only when the models are asked for,
so that the scripts can check their inputs and fail fast without it.
"""

__all__ = ["load_model"]


def __getattr__(name):
    if name == "load_model":
        from .convert.model import load_model

        return load_model
    raise AttributeError(f"module 'modules' has no attribute {name!r}")
