"""The fixtures the tests share; the helpers they import are in tests/helpers.py."""

import pytest
from helpers import CASES, TARGETS, build, tiny_model


@pytest.fixture(params=CASES)
def case(request):
    return request.param


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


@pytest.fixture(
    params=[
        # The exports need a build of each case first: slow tier.
        target if target == "keras" else pytest.param(target, marks=pytest.mark.slow)
        for target in TARGETS
    ]
)
def target(request):
    return request.param
