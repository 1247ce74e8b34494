"""The page's web models (build.py --web) on ONNX Runtime Web's WebGPU execution provider in
headless Chromium (web/bench/webgpu.html): the same frame as on WebAssembly within 1 level.

Without a GPU, Chromium's WebGPU runs on SwiftShader (Vulkan on the CPU) when started with
browser.WEBGPU_FLAGS; where navigator.gpu offers no adapter the test skips and says what it
said.
"""

import browser
import numpy as np
import pytest
from helpers import build, reference
from skimage import img_as_ubyte

CASE = "tiny-vox"


@pytest.fixture(scope="module")
def tiny_web_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("webgpu-build")
    build(CASE, root, "--nolite", "--web", "--web_models", str(root / "models"))
    return root / "models"


@pytest.mark.slow
def test_webgpu_frame_matches_webassembly_within_one_level(tiny_web_models):
    reason = browser.missing()
    if reason:
        pytest.skip(f"no browser here: {reason}")
    ref = reference(CASE)
    inputs = {
        "model": CASE,
        "repeats": 1,
        "source": browser.float32_base64(ref["source_uint8"] / 255),
        "driving": browser.float32_base64(ref["driving_uint8"][:1] / 255),
    }
    with (
        browser.serve(tiny_web_models) as url,
        browser.chromium(gpu_flags=browser.WEBGPU_FLAGS) as driver,
    ):
        browser.open_bench_page(driver, url, "webgpu.html", "webgpuBench")
        adapter = browser.call(driver, "window.webgpuBench.adapter")
        if "adapter" not in adapter:
            pytest.skip(
                f"no WebGPU adapter in headless Chromium with {' '.join(browser.WEBGPU_FLAGS)}: "
                f"{adapter.get('reason') or adapter.get('error')}"
            )
        frames = {}
        for ep in ("wasm", "webgpu"):
            result = browser.call(driver, "window.webgpuBench.run", dict(inputs, ep=ep))
            assert "error" not in result, f"{ep}: {result.get('error')}"
            prediction = browser.base64_float32(result["prediction"], (1, 256, 256, 3))
            frames[ep] = img_as_ubyte(np.clip(prediction, 0, 1))
    diff = np.abs(frames["webgpu"].astype(int) - frames["wasm"])
    assert diff.max() <= 1, f"WebGPU ({adapter['adapter']}) differs by {diff.max()} levels"
