"""TF Lite models in the browser with LiteRT.js (@litertjs/core, WebAssembly + XNNPACK) in
headless Chromium: seconds per frame of the generator's ``animate_encoded`` (batch 1) and of
the keypoint detector, against LiteRT Python (ai_edge_litert) on the same files. Needs no
download.

    python build.py --model NAME --static_batch 1 --quantize dynamic
    python benchmarks/bench_litertjs.py tflite/NAME-dynamic [--reference DIR] [--repeats 2]

MODELS is a build.py TF Lite folder (kp_detector.tflite, generator.tflite with the
``encode_source`` and ``animate_encoded`` signatures). The inputs are the example source and
the first frame of the example video, their keypoints from LiteRT Python. The page
(web/bench/litert.html) runs once with one WebAssembly thread (a plain static server) and once
cross-origin isolated (COOP/COEP headers) with one thread per core; each timing is the best of
``--repeats``. The browser's prediction is compared with LiteRT Python's (PSNR on 0..1, max abs
difference), and with ``--reference`` (a float32 build of the same weights) with its float32
prediction. A model LiteRT.js refuses prints what it said (it needs static shapes).
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import browser  # noqa: E402


def inputs():
    """Example source and first driving frame: float32 [1, 256, 256, 3] in 0..1."""
    import imageio.v2 as imageio
    from skimage.transform import resize

    source = imageio.imread(os.path.join(ROOT, "example", "source.png"))[..., :3]
    reader = imageio.get_reader(os.path.join(ROOT, "example", "driving.mp4"))
    driving = reader.get_data(0)[..., :3]
    reader.close()
    return [resize(x, (256, 256))[None].astype(np.float32) for x in (source, driving)]


def litert_python(models, source, driving, repeats):
    """Inputs for the page, LiteRT Python's prediction and its timings (1 thread)."""
    from ai_edge_litert.interpreter import Interpreter

    kp = Interpreter(os.path.join(models, "kp_detector.tflite"), num_threads=1)
    gen = Interpreter(os.path.join(models, "generator.tflite"), num_threads=1)
    detect = kp.get_signature_runner("serving_default")
    animate = gen.get_signature_runner("animate_encoded")
    kp_source, kp_driving = detect(image=source), detect(image=driving)
    encoded = gen.get_signature_runner("encode_source")(source_image=source)
    feeds = dict(
        encoded,
        kp_source_value=kp_source["value"],
        kp_source_jacobian=kp_source["jacobian"],
        kp_driving_value=kp_driving["value"],
        kp_driving_jacobian=kp_driving["jacobian"],
    )
    times = {"kp_detector": [], "animate_encoded": []}
    for _ in range(repeats):
        start = time.perf_counter()
        detect(image=driving)
        times["kp_detector"].append(time.perf_counter() - start)
        start = time.perf_counter()
        prediction = animate(**feeds)["prediction"]
        times["animate_encoded"].append(time.perf_counter() - start)
    page = {
        "source_image": source,
        "driving_image": driving,
        "kp_source_value": kp_source["value"],
        "kp_source_jacobian": kp_source["jacobian"],
        "kp_driving_value": kp_driving["value"],
        "kp_driving_jacobian": kp_driving["jacobian"],
    }
    return page, prediction, kp_driving["value"], times


def run_page(models, page_inputs, threads, repeats):
    """The page's report (dict), with ``error`` when LiteRT.js refused."""
    with browser.serve(models, isolated=threads) as url, browser.chromium() as driver:
        browser.open_bench_page(driver, url, "litert.html", "litertBench")
        report = browser.call(
            driver,
            "window.litertBench.run",
            {
                "dir": "../models",
                "threads": threads,
                "numThreads": os.cpu_count() if threads else 1,
                "repeats": repeats,
                "inputs": {k: browser.float32_base64(v) for k, v in page_inputs.items()},
            },
        )
        report["browser"] = driver.capabilities.get("browserVersion")
        report["log"] = [e["message"] for e in driver.get_log("browser")]
    return report


def compare(a, b):
    diff = np.abs(a.astype(np.float64) - b)
    mse = np.mean(diff**2)
    return (float("inf") if mse == 0 else 10 * np.log10(1 / mse)), float(diff.max())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", help="a build.py TF Lite folder (static batch 1)")
    parser.add_argument(
        "--reference",
        help="a float32 TF Lite folder of the same weights: also PSNR against its prediction",
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed runs, best counts (default 2)"
    )
    args = parser.parse_args()
    reason = browser.missing()
    if reason:
        sys.exit(f"bench_litertjs.py needs the browser: {reason}")
    if not (browser.WEB / "node_modules" / "@litertjs" / "core").is_dir():
        sys.exit("web/node_modules/@litertjs/core is missing (npm ci --ignore-scripts in web/)")
    source, driving = inputs()
    page_inputs, reference, kp_reference, py = litert_python(
        args.models, source, driving, args.repeats
    )
    float32 = None
    if args.reference:
        float32 = litert_python(args.reference, source, driving, 1)[1]
        psnr, worst = compare(reference, float32)
        print(f"LiteRT Python against float32: PSNR {psnr:.1f} dB, max abs diff {worst:.2g}")
    print(
        f"LiteRT Python, 1 thread: kp_detector {min(py['kp_detector']):.3f} s, "
        f"animate_encoded {min(py['animate_encoded']):.3f} s",
        flush=True,
    )
    rows = []
    for threads in (False, True):
        report = run_page(args.models, page_inputs, threads, args.repeats)
        label = f"{os.cpu_count()} threads (isolated)" if threads else "1 thread"
        if "error" in report:
            print(f"LiteRT.js, {label}: refused: {report['error']}")
            for line in report["log"]:
                print("  console:", line)
            continue
        prediction = browser.base64_float32(report["prediction"], reference.shape)
        psnr, worst = compare(prediction, reference)
        kp = browser.base64_float32(report["kp_value"], kp_reference.shape)
        kp_worst = compare(kp, kp_reference)[1]
        rows.append(
            f"| {label} | {min(report['animate_encoded_s']):.3f} | "
            f"{min(report['kp_detector_s']):.3f} | {report['encode_source_s']:.2f} | "
            f"{report['load_s']['generator']:.1f} | {psnr:.1f} | {worst:.2g} | {kp_worst:.2g} |"
        )
        if float32 is not None:
            rows[-1] += f" {compare(prediction, float32)[0]:.1f} |"
        print(rows[-1], flush=True)
    print()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, headless Chromium "
        f"{report.get('browser')}, @litertjs/core 2.5.3, load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print()
    print(
        "| LiteRT.js | animate_encoded s | kp_detector s | encode_source s | generator load s "
        "| PSNR dB vs LiteRT Python | max abs diff | kp max abs diff |"
        + (" PSNR dB vs float32 |" if float32 is not None else "")
    )
    print("|---|---|---|---|---|---|---|---|" + ("---|" if float32 is not None else ""))
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
