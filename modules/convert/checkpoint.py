"""Read the original FOMM's ``*-cpk.pth.tar`` checkpoints without torch.

``read_checkpoint`` reproduces ``torch.load(path, map_location='cpu', weights_only=True)``
with every tensor returned as a numpy array, for both torch serialization formats
(``torch_files.py``). Unpickling goes through an allow-list and size bounds
(``pickle_guard.py``); tensors are rebuilt by ``tensors.py``.

Time and memory are bounded by the file's size and the tensors it declares: anything past the
bounds is a ``CheckpointError``, never a hang, and nothing in the file is ever executed.
"""

import os
import pickle
import re

import numpy as np

from .. import extras
from ..errors import CheckpointError
from .pickle_guard import LimitExceeded, RefusedGlobal, UnsupportedType
from .tensors import CopyBudget, materialize
from .torch_files import MAX_INFLATED_BYTES, load_legacy, load_zip


def _load_numpy(f):
    is_zip = f.read(4) == b"PK\x03\x04"
    f.seek(0)
    result, storages = (load_zip if is_zip else load_legacy)(f)
    storages.finish()
    # Copies of strided views may take what the file holds plus a margin, no more.
    budget = CopyBudget(MAX_INFLATED_BYTES + os.fstat(f.fileno()).st_size)
    return materialize(result, budget)


def _load_torch(path):
    """The cross-check route: ``torch.load(..., weights_only=True)``, tensors as numpy."""
    # torch is a test requirement, no extra: the built-in reader needs none.
    what = "--loadwithtorch (leave it out to use the built-in reader)"
    torch = extras.require("torch", None, what, error=CheckpointError)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only names the global it blocked, e.g. 'GLOBAL posix.system'.
        blocked = re.search(r"GLOBAL ([\w.]+)", str(e))
        if blocked:
            raise RefusedGlobal(blocked.group(1)) from None
        raise

    def convert(x):
        if isinstance(x, torch.Tensor):
            if x.dtype == torch.bfloat16:
                raise UnsupportedType("torch.bfloat16 tensors have no numpy dtype")
            return x.detach().resolve_conj().numpy().copy()
        if isinstance(x, dict):
            return type(x)((k, convert(v)) for k, v in x.items())
        if isinstance(x, (list, tuple)):
            return type(x)(convert(v) for v in x)
        return x

    return convert(obj)


def _one_line(e):
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]


_FOMM_HINT = "pass an FOMM *-cpk.pth.tar checkpoint saved by the original train.py"


def check_checkpoint_file(path):
    """The path as a string, once it names a readable file (the scripts call this before
    TensorFlow loads); CheckpointError otherwise."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(
            f"{path}: checkpoint not found; check the path (the published "
            f"*-cpk.pth.tar files are linked from the original README)"
        )
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: not a file; {_FOMM_HINT}")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"{path}: cannot be read; check its permissions")
    return path


def read_checkpoint(path, use_torch=False):
    """The whole checkpoint as ``torch.load(path, map_location='cpu', weights_only=True)``
    would return it, with numpy arrays for tensors. ``use_torch=True`` calls exactly that
    (torch imported only then), as a cross-check."""
    path = check_checkpoint_file(path)
    try:
        if use_torch:
            result = _load_torch(path)
        else:
            with open(path, "rb") as f:
                result = _load_numpy(f)
    except RefusedGlobal as e:
        raise CheckpointError(
            f"{path}: refused global {e} (it was not executed): the file is not a plain "
            f"checkpoint of tensors; do not load it anywhere unless you trust its source"
        ) from None
    except UnsupportedType as e:
        raise CheckpointError(
            f"{path}: cannot be read into numpy: {e}; "
            f"convert it to float32 with torch and save it again"
        ) from None
    except LimitExceeded as e:
        raise CheckpointError(
            f"{path}: refused: {e}, past this reader's limits; a real FOMM checkpoint stays "
            f"far below them, this file is damaged or crafted"
        ) from None
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"{path}: corrupt checkpoint (objects nested too deeply)") from None
    except PermissionError as e:
        raise CheckpointError(
            f"{path}: cannot be read ({_one_line(e)}); check its permissions"
        ) from None
    except MemoryError:
        raise CheckpointError(
            f"{path}: not enough memory to read this checkpoint (it declares larger tensors "
            f"than this machine can hold); check the file"
        ) from None
    except Exception as e:  # a damaged file can break pickle, zipfile, struct or numpy anywhere
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint ({type(e).__name__}: "
            f"{_one_line(e)}); download it again"
        ) from None
    if not isinstance(result, dict):
        raise CheckpointError(f"{path}: holds a {type(result).__name__}, not a dict; {_FOMM_HINT}")
    return result


def read_state_dicts(path, use_torch=False):
    """``(checkpoint['generator'], checkpoint['kp_detector'])``: the two state dicts the
    original demo.py passes to ``load_state_dict``, as ``{key: np.ndarray}`` in file order."""
    checkpoint = read_checkpoint(path, use_torch)
    path = os.fspath(path)
    state_dicts = []
    for name in ("generator", "kp_detector"):
        if name not in checkpoint:
            found = ", ".join(map(str, checkpoint)) or "nothing"
            raise CheckpointError(f"{path}: no '{name}' entry (found: {found}); {_FOMM_HINT}")
        state = checkpoint[name]
        if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items()
        ):
            raise CheckpointError(f"{path}: '{name}' is not a state dict of tensors; {_FOMM_HINT}")
        state_dicts.append(state)
    return tuple(state_dicts)
