"""The package layers depend one way: networks <- convert <- export <- app.

``modules/errors.py``, ``modules/runtime.py`` and ``modules/atomic.py`` are the base every
layer may use; the network files sit at the top of ``modules/``.
"""

import ast
import pathlib

import pytest

MODULES = pathlib.Path(__file__).resolve().parent.parent / "modules"
BASE = {"modules", "modules.errors", "modules.runtime", "modules.atomic"}
RANK = {"base": 0, "networks": 1, "convert": 2, "export": 3, "app": 4}


def layer(module):
    if module in BASE:
        return "base"
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in RANK else "networks"


def module_name(path):
    parts = path.relative_to(MODULES.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path):
    """Every ``modules.*`` name the file imports, also inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("modules"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("modules"))
    known = {module_name(p) for p in MODULES.rglob("*.py")}
    return {n for n in names if n in known}


FILES = sorted(p for p in MODULES.rglob("*.py") if p.name != "__init__.py" or p.parent != MODULES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(MODULES)))
def test_imports_point_down(path):
    own = layer(module_name(path))
    upward = [n for n in imported(path) if RANK[layer(n)] > RANK[own]]
    assert not upward, f"{path.name} ({own}) imports {upward}"


def test_every_user_error_has_one_base():
    from modules import errors

    classes = [
        v for v in vars(errors).values() if isinstance(v, type) and v.__module__ == errors.__name__
    ]
    assert all(issubclass(c, errors.FommError) for c in classes)
    for path in MODULES.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            # Private exceptions (_Refused) stay inside their module.
            public = isinstance(node, ast.ClassDef) and not node.name.startswith("_")
            if public and path.name != "errors.py":
                bases = {getattr(b, "id", getattr(b, "attr", None)) for b in node.bases}
                assert "Exception" not in bases, f"{path.name}: {node.name} is not a FommError"


REPO = MODULES.parent
MAX_LINES = 400


def source_files():
    """The project's .py files: not those of installed packages (node_modules, the TF.js
    converter's .venv-tfjs/) or git's."""

    def ours(path):
        parts = path.relative_to(REPO).parts
        return not any(p in ("node_modules", ".git") or p.startswith(".venv") for p in parts)

    return sorted(p for p in REPO.rglob("*.py") if ours(p))


def test_no_source_file_over_400_lines():
    long = {
        str(p.relative_to(REPO)): n
        for p in source_files()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"
