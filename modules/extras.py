"""The optional packages: pyproject.toml's extras (faces, ray, onnx) and torch.

The core install leaves them out, so each one is imported only where a feature needs it, and
a missing one is one line naming the feature, the package and the install command, never a
traceback.
"""

import importlib
import importlib.util

from .errors import UsageError


def install_command(extra):
    """How to install an extra of pyproject.toml (None: torch, which is no extra)."""
    if extra is None:
        return "python -m pip install torch"
    return f"python -m pip install 'fomm-tf[{extra}]' (in a checkout: bash install.sh)"


def message(module, extra, what, label=None, error=None):
    """'WHAT needs LABEL, which is not installed: INSTALL'. ``error``: the ImportError, when
    ``module`` itself was found but something it imports was not."""
    missing = getattr(error, "name", None)
    top = module.split(".")[0]
    if error is None or missing is None or missing.split(".")[0] == top:
        state = "which is not installed"
    else:  # e.g. mtcnn without joblib: the extra installs both
        state = f"which cannot be imported ({error})"
    return f"{what} needs {label or module}, {state}: {install_command(extra)}"


def require(module, extra, what, label=None, error=UsageError):
    """The imported ``module``, else ``error`` with ``message`` (``what``: the feature that
    needs it, e.g. '--crop'; ``label``: how to name the package, default ``module``)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise error(message(module, extra, what, label, e)) from None


def check(module, extra, what, label=None, error=UsageError):
    """``require``'s error when ``module`` cannot be found, without importing it: the scripts
    check their flags before TensorFlow loads, and these packages import it."""
    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package missing, or an import hook refusing it
        found = False
    if not found:
        raise error(message(module, extra, what, label))
