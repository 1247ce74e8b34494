"""Shared test helpers: the reference fixtures of the original and the tiny models."""

import functools
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
CASES = ("tiny-vox", "tiny-mgif")
MODES = {  # fixture suffix -> process_kp flags (relative movement, relative jacobian, adapt)
    "abs": (0.0, 0.0, 0.0),
    "rel": (1.0, 1.0, 0.0),
    "rel_adapt": (1.0, 1.0, 1.0),
}
# Tolerances of tests/fixtures/README.md.
KP_TOL = 5e-5
IMAGE_TOL = 1e-4


def case_dir(case):
    return FIXTURES / case


def config_path(case):
    return case_dir(case) / "config.yaml"


def checkpoint_path(case):
    return case_dir(case) / f"{case}-cpk.pth.tar"


@functools.cache
def reference(case):
    with np.load(case_dir(case) / "reference.npz") as data:
        return {k: data[k] for k in data.files}


def images(case):
    """(source [1, H, W, 3], driving [N, H, W, 3]) as the model inputs: uint8 / 255."""
    ref = reference(case)
    return (
        ref["source_uint8"][None].astype(np.float32) / 255,
        ref["driving_uint8"].astype(np.float32) / 255,
    )


@functools.cache
def tiny_model(case):
    from modules import load_model

    return load_model(config_path(case), checkpoint_path(case))


def assert_close(name, got, want, tol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != reference {want.shape}"
    diff = float(np.max(np.abs(got.astype(np.float64) - want)))
    assert diff <= tol, f"{name}: max abs difference {diff:.3g} > {tol:g}"


@pytest.fixture(params=CASES)
def case(request):
    return request.param


TARGETS = ("keras", "savedmodel", "tflite")


def build(case, root, *flags):
    """Runs build.py for a tiny case into ``root`` (saved_models/ and tflite/ below it)."""
    import build as build_script

    build_script.main(
        [
            "--model",
            case,
            "--config",
            str(config_path(case)),
            "--checkpoint",
            str(checkpoint_path(case)),
            "--saved_models",
            str(root / "saved_models"),
            "--tflite",
            str(root / "tflite"),
            *flags,
        ]
    )


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """Folder with the SavedModels and TF Lite models of each case, built once a session."""
    roots = {}

    def get(case):
        if case not in roots:
            roots[case] = tmp_path_factory.mktemp(f"built-{case}")
            build(case, roots[case])
        return roots[case]

    return get


@pytest.fixture(scope="session")
def target_model(built):
    """``target_model(case, target)``: the tiny model from the Keras port, its reloaded
    SavedModels or its TF Lite models on the LiteRT interpreter."""
    from modules.app.sources import LiteModels, SavedModels

    cache = {}

    def get(case, target):
        if (case, target) not in cache:
            if target == "keras":
                cache[case, target] = tiny_model(case)
            elif target == "savedmodel":
                cache[case, target] = SavedModels(built(case) / "saved_models" / case, "build.py")
            else:
                cache[case, target] = LiteModels(built(case) / "tflite" / case, "build.py")
        return cache[case, target]

    return get


@pytest.fixture(params=TARGETS)
def target(request):
    return request.param
