"""Maps the original's ``state_dict``s onto the Keras models, by name, strictly.

The Keras leaf layers are named after the torch module paths, so a checkpoint key is
``<leaf layer name>.<torch parameter name>``. One function lists what a model expects
(``torch_state``) and one loads it (``load_state_dict``); the only transpose is the conv
kernel's OIHW -> HWIO, picked by rank.
"""

import numpy as np

from ..errors import WeightError
from ..layers import AntiAliasInterpolation2d, BatchNorm2d, Conv2d
from .mismatch import describe

LEAVES = (AntiAliasInterpolation2d, BatchNorm2d, Conv2d)


def torch_state(model):
    """The model's expected ``state_dict`` as ``{key: TorchEntry}``, in torch's order."""
    state = {}
    for layer in _leaves(model):
        for suffix, entry in layer.torch_state().items():
            state[f"{layer.name}.{suffix}"] = entry
    return state


def _leaves(layer):
    """Leaf layers depth first in creation order, the order of torch's ``named_modules``."""
    for sub in layer._flatten_layers(include_self=False, recursive=False):
        if isinstance(sub, LEAVES):
            yield sub
        else:
            yield from _leaves(sub)


def to_keras(array):
    """torch layout -> Keras layout: conv kernels OIHW -> HWIO, everything else as is."""
    return np.transpose(array, (2, 3, 1, 0)) if array.ndim == 4 else array


def from_keras(array):
    """Keras layout -> torch layout, the inverse of ``to_keras``."""
    return np.transpose(array, (3, 2, 0, 1)) if array.ndim == 4 else array


def state_dict(model):
    """The model's weights as the original's ``state_dict`` (torch layout, parameters and
    running statistics; buffers the port computes are left out)."""
    return {
        key: from_keras(entry.variable.numpy())
        for key, entry in torch_state(model).items()
        if entry.variable is not None
    }


def load_state_dict(model, state_dict, what):
    """Copies ``state_dict`` ({key: np.ndarray}) into ``model``.

    Fails with a WeightError that says how the checkpoint differs from the config and lists
    a few of the missing, unexpected or mis-shaped keys (modules/convert/mismatch.py). Keys
    whose entry has no variable are buffers: ``num_batches_tracked`` (ignored, may be
    absent) and the anti-alias ``down.weight`` (may be absent; when present it must equal the
    kernel the port computes). ``what`` names the checkpoint part in messages.
    """
    expected = torch_state(model)
    missing = [k for k, e in expected.items() if k not in state_dict and e.variable is not None]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped, other = {}, []
    for key, entry in expected.items():
        if key not in state_dict:
            continue
        got = tuple(np.shape(state_dict[key]))
        if got != tuple(entry.shape):
            misshaped[key] = (got, tuple(entry.shape))
        elif entry.expected is not None and not np.allclose(
            state_dict[key], entry.expected, rtol=1e-5, atol=1e-7
        ):
            other.append(f"{key} differs from the anti-alias kernel of the config's scale_factor")
    if misshaped or missing or unexpected or other:
        # A summary first, then a few keys: a checkpoint of another size differs everywhere.
        raise WeightError(describe(what, misshaped, missing, unexpected, other))
    for key, entry in expected.items():
        if entry.variable is not None:
            entry.variable.assign(to_keras(np.asarray(state_dict[key], dtype=np.float32)))


def random_state_dict(model, seed=0):
    """A state_dict of ``model``'s layout with random weights (He-normal convolutions, unit
    batch-norm statistics, identity jacobian heads as the original initializes them), for
    tests and benchmarks that need no checkpoint."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, entry in torch_state(model).items():
        if entry.expected is not None:
            state[key] = entry.expected
        elif entry.variable is None:
            continue
        elif len(entry.shape) == 4:
            fan_in = int(np.prod(entry.shape[1:]))
            scale = 0.01 if key.startswith("jacobian") else 1.0
            state[key] = rng.normal(0, scale * np.sqrt(2 / fan_in), entry.shape).astype(np.float32)
        elif key == "jacobian.bias":
            state[key] = np.tile(np.float32([1, 0, 0, 1]), entry.shape[0] // 4)
        elif key.endswith(("running_var", "norm.weight", "norm1.weight", "norm2.weight")):
            state[key] = rng.uniform(0.8, 1.2, entry.shape).astype(np.float32)
        else:
            state[key] = rng.normal(0, 0.05, entry.shape).astype(np.float32)
    return state
