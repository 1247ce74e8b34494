"""The page's web models (build.py --web) on ONNX Runtime Web's WebGPU execution provider
against its WebAssembly one, in headless Chromium (web/bench/webgpu.html): seconds of the
generator's ``animate_encoded`` (batch 1), of the keypoint detector and of ``encode_source``,
and the largest difference of the two predictions. Needs no download.

    python benchmarks/bench_webgpu.py WEB_MODELS NAME [NAME ...] [--repeats 2]

WEB_MODELS is a ``--web_models`` folder (e.g. web/models). Chromium starts with
browser.WEBGPU_FLAGS; without a GPU its adapter is SwiftShader (Vulkan on the CPU). The
inputs are the example source and the first frame of the example video; WebAssembly runs one
thread (a plain static server).
"""

import argparse
import os
import platform
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import browser  # noqa: E402
from bench_litertjs import inputs  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", help="a build.py --web_models folder")
    parser.add_argument("names", nargs="+", help="web models in it (e.g. tiny-vox vox)")
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed animate_encoded runs, best counts"
    )
    args = parser.parse_args()
    reason = browser.missing()
    if reason:
        sys.exit(f"bench_webgpu.py needs the browser: {reason}")
    source, driving = inputs()
    rows = []
    with (
        browser.serve(args.models) as url,
        browser.chromium(gpu_flags=browser.WEBGPU_FLAGS) as driver,
    ):
        browser.open_bench_page(driver, url, "webgpu.html", "webgpuBench")
        adapter = browser.call(driver, "window.webgpuBench.adapter")
        print(f"WebGPU with {' '.join(browser.WEBGPU_FLAGS)}: {adapter}", flush=True)
        if "adapter" not in adapter:
            sys.exit(1)
        for name in args.names:
            frames = {}
            for ep in ("wasm", "webgpu"):
                report = browser.call(
                    driver,
                    "window.webgpuBench.run",
                    {
                        "model": name,
                        "ep": ep,
                        "repeats": args.repeats,
                        "source": browser.float32_base64(source),
                        "driving": browser.float32_base64(driving),
                    },
                )
                if "error" in report:
                    print(f"{name} on {ep}: failed: {report['error']}", flush=True)
                    continue
                frames[ep] = browser.base64_float32(report["prediction"], source.shape)
                rows.append(
                    f"| {name} | {ep} | {min(report['animate_encoded_s']):.3f} | "
                    f"{report['kp_detector_s']:.3f} | {report['encode_source_s']:.3f} | "
                    f"{report['load_s']:.1f} |"
                )
                print(rows[-1], flush=True)
            if len(frames) == 2:
                diff = np.abs(frames["webgpu"].astype(np.float64) - frames["wasm"])
                print(f"{name}: WebGPU against WebAssembly: max abs diff {diff.max():.2g}")
        version = driver.capabilities.get("browserVersion")
    print()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, headless Chromium {version}, "
        f"adapter {adapter['adapter']}, load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print()
    print("| model | EP | animate_encoded s | kp_detector s | encode_source s | load s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
