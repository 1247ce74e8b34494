"""Maps the original's ``state_dict``s onto the Keras models, by name, strictly.

The Keras leaf layers are named after the torch module paths, so a checkpoint key is
``<leaf layer name>.<torch parameter name>``. One function lists what a model expects
(``torch_state``) and one loads it (``load_state_dict``); the only transpose is the conv
kernel's OIHW -> HWIO, picked by rank.
"""
import numpy as np

from modules.layers import AntiAliasInterpolation2d, BatchNorm2d, Conv2d

LEAVES = (AntiAliasInterpolation2d, BatchNorm2d, Conv2d)


class WeightError(Exception):
    """A checkpoint that does not fit the model built from the config."""


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


def load_state_dict(model, state_dict, what):
    """Copies ``state_dict`` ({key: np.ndarray}) into ``model``.

    Fails with a WeightError listing every missing, unexpected or mis-shaped key (with both
    shapes). Keys whose entry has no variable are buffers: ``num_batches_tracked`` (ignored,
    may be absent) and the anti-alias ``down.weight`` (may be absent; when present it must
    equal the kernel the port computes). ``what`` names the checkpoint part in messages.
    """
    expected = torch_state(model)
    problems = []
    missing = [k for k, e in expected.items()
               if k not in state_dict and e.variable is not None]
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    unexpected = [k for k in state_dict if k not in expected]
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    for key, entry in expected.items():
        if key not in state_dict:
            continue
        got = tuple(np.shape(state_dict[key]))
        if got != tuple(entry.shape):
            problems.append(f"{key} has shape {list(got)} in the checkpoint but the config "
                            f"gives {list(entry.shape)}")
        elif entry.expected is not None and not np.allclose(
                state_dict[key], entry.expected, rtol=1e-5, atol=1e-7):
            problems.append(f"{key} differs from the anti-alias kernel the config's "
                            f"scale_factor gives")
    if problems:
        raise WeightError(f"{what} does not match the config: " + "; ".join(problems))
    for key, entry in expected.items():
        if entry.variable is not None:
            entry.variable.assign(to_keras(np.asarray(state_dict[key], dtype=np.float32)))
