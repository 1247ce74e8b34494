"""The fixtures the tests share; the helpers they import are in tests/helpers.py."""

import os
import signal
import sys

import pytest
from helpers import CASES, TARGETS, build, tiny_model


@pytest.fixture(scope="session", autouse=True)
def cache_home(tmp_path_factory):
    """testlite.py keeps XNNPACK's packed weights under $XDG_CACHE_HOME
    (modules/app/weight_cache.py): the tests', not the user's. Subprocesses inherit it."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))
    yield os.environ["XDG_CACHE_HOME"]
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session", autouse=True)
def terminal_signals():
    """A run started in the background by a shell without job control (``nohup ... &``)
    begins with SIGINT and SIGHUP ignored, and every script the tests start would inherit
    that (an ignored signal stays ignored across exec). The signal tests send them as a
    terminal does, to scripts that must see them: here they have their usual handlers."""
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGHUP: signal.SIG_DFL}
    ignored = [s for s in defaults if signal.getsignal(s) == signal.SIG_IGN]
    for s in ignored:
        signal.signal(s, defaults[s])
    yield
    for s in ignored:
        signal.signal(s, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def graph_optimizer():
    """run.py and test.py turn TensorFlow's graph optimizer off for their process
    (``modules.runtime.skip_graph_optimizer``); after a test that ran one in this process,
    it is on again, so that every test runs as it would alone."""
    yield
    if "tensorflow" in sys.modules:
        options = {"disable_meta_optimizer": False}
        sys.modules["tensorflow"].config.optimizer.set_experimental_options(options)


@pytest.fixture(params=CASES)
def case(request):
    return request.param


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """``built(case)``: folder with the SavedModels and TF Lite models of each case;
    ``built(case, "--onnx", "--nolite")``: another one with the SavedModels and ONNX models.
    Each is built once a session."""
    roots = {}

    def get(case, *flags):
        if (case, flags) not in roots:
            roots[case, flags] = tmp_path_factory.mktemp(f"built-{case}")
            build(case, roots[case, flags], *flags)
        return roots[case, flags]

    return get


@pytest.fixture(scope="session")
def target_model(built):
    """``target_model(case, target)``: the tiny model from the Keras port, its reloaded
    SavedModels, its TF Lite models on LiteRT (testlite.py's CompiledModel) or its ONNX
    models on onnxruntime."""
    from modules.app.sources import LiteModels, OnnxModels, SavedModels

    cache = {}

    def get(case, target):
        if (case, target) not in cache:
            if target == "keras":
                cache[case, target] = tiny_model(case)
            elif target == "savedmodel":
                cache[case, target] = SavedModels(built(case) / "saved_models" / case, "build.py")
            elif target == "tflite":
                cache[case, target] = LiteModels(built(case) / "tflite" / case, "build.py")
            else:
                root = built(case, "--onnx", "--nolite")
                cache[case, target] = OnnxModels(root / "onnx" / case, "build.py --onnx")
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


@pytest.fixture(scope="session")
def web_models(tmp_path_factory):
    """build.py --web, --web_int8 and --web_litert output for both tiny models (web/models/
    of a fresh folder)."""
    root = tmp_path_factory.mktemp("web-build")
    for case in CASES:
        flags = ("--nolite", "--web", "--web_int8", "--web_litert")
        build(case, root, *flags, "--web_models", str(root / "models"))
    return root / "models"
