"""The animation service (serve.py) under load, and a warm job beside a whole script run.

Starts serve.py on a free port of 127.0.0.1 with the TF Lite models in ``--tflite DIR``, then:

- a warm 1-frame job (POST, poll every 10 ms, GET the video) beside the whole process of
  testlite.py (and run.py when ``--config`` and ``--checkpoint`` are given) on the same
  1-frame video;
- 1, 4 and 16 concurrent clients, each posting the 8-frame driving video and waiting for its
  result (polling every 0.2 s), one job after another: jobs per minute, p50/p95 job latency
  (POST to the video downloaded), and any job lost or answered with a server error.

Tiny-vox (build it first; about 30 s):

    python build.py --model tiny-vox --config tests/fixtures/tiny-vox/config.yaml \\
        --checkpoint tests/fixtures/tiny-vox/tiny-vox-cpk.pth.tar \\
        --saved_models /tmp/tiny/saved_models --tflite /tmp/tiny/tflite
    python benchmarks/serve.py --model tiny-vox --tflite /tmp/tiny/tflite \\
        --config tests/fixtures/tiny-vox/config.yaml \\
        --checkpoint tests/fixtures/tiny-vox/tiny-vox-cpk.pth.tar \\
        --source tests/fixtures/tiny-vox/demo/source.png \\
        --driving tests/fixtures/tiny-vox/demo/driving.mp4

Full-size vox with dynamic int8: ``--model vox --quantize dynamic`` (models from build.py).
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENTS = (1, 4, 16)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def form(source, driving, fields):
    boundary = uuid.uuid4().hex
    parts = []
    for name, path in (("source", source), ("driving", driving)):
        head = f'Content-Disposition: form-data; name="{name}"; filename="{os.path.basename(path)}"'
        with open(path, "rb") as f:
            parts.append(head.encode() + b"\r\n\r\n" + f.read())
    for name, value in fields.items():
        parts.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode())
    body = b"".join(f"--{boundary}\r\n".encode() + p + b"\r\n" for p in parts)
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def call(url, method="GET", body=None, headers=None):
    request = urllib.request.Request(url, body, headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def job(url, body, kind, poll):
    """One job from POST to the video downloaded: (seconds, error or None)."""
    began = time.perf_counter()
    code, data = call(f"{url}/v1/animations", "POST", body, {"Content-Type": kind})
    if code != 202:
        return time.perf_counter() - began, f"POST {code}: {data[:200]!r}"
    job_id = json.loads(data)["id"]
    while True:
        code, data = call(f"{url}/v1/animations/{job_id}")
        state = json.loads(data) if code == 200 else {"status": f"HTTP {code}"}
        if state["status"] in ("done", "failed") or code != 200:
            break
        time.sleep(poll)
    if state["status"] != "done":
        return time.perf_counter() - began, f"job {state}"
    code, data = call(f"{url}/v1/animations/{job_id}/result")
    seconds = time.perf_counter() - began
    call(f"{url}/v1/animations/{job_id}", "DELETE")  # keeps the store small
    return seconds, None if code == 200 and data else f"result {code}"


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def one_frame_video(driving, folder):
    import imageio_ffmpeg

    path = os.path.join(folder, "one.mp4")
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-i",
            driving,
            "-frames:v",
            "1",
            "-an",
            "-c:v",
            "libx264",
            path,
        ],
        check=True,
    )
    return path


def whole_process(script, args, repeats):
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, os.path.join(ROOT, script), *args], check=True, capture_output=True
        )
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny-vox")
    p.add_argument("--tflite", required=True, metavar="DIR")
    p.add_argument("--quantize", choices=("float16", "dynamic"))
    p.add_argument("--config", help="with --checkpoint: also time run.py's whole process")
    p.add_argument("--checkpoint")
    p.add_argument("--source", default=os.path.join(ROOT, "example", "source.png"))
    p.add_argument("--driving", default=os.path.join(ROOT, "example", "driving.mp4"))
    p.add_argument("--jobs_per_client", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    model = ["--model", args.model] + (["--quantize", args.quantize] if args.quantize else [])
    folder = tempfile.mkdtemp(prefix="bench-serve-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(os.path.join(folder, "server.log"), "w")
    server = subprocess.Popen(
        [
            sys.executable,
            os.path.join(ROOT, "serve.py"),
            *model,
            "--tflite",
            args.tflite,
            "--jobs",
            os.path.join(folder, "jobs"),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        began = time.perf_counter()
        while call_ok(f"{url}/healthz") is False:
            if server.poll() is not None or time.perf_counter() - began > 1800:
                raise SystemExit(f"serve.py did not start; see {log.name}")
            time.sleep(0.2)
        print(f"serve.py ready in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        rows = []
        one = one_frame_video(args.driving, folder)
        body, kind = form(args.source, one, {"relative": "true", "adapt_scale": "true"})
        job(url, body, kind, 0.01)  # the first job packs nothing more, but warms the caches
        warm = [job(url, body, kind, 0.01) for _ in range(args.repeats)]
        assert not [e for _, e in warm if e], warm
        out = os.path.join(folder, "out.mp4")
        flags = [
            "--source_image",
            args.source,
            "--driving_video",
            one,
            "--output",
            out,
            "--relative",
            "--adapt_scale",
        ]
        lite = whole_process("testlite.py", [*model, "--tflite", args.tflite, *flags], args.repeats)
        rows.append(("warm 1-frame job (serve.py)", statistics.median(s for s, _ in warm)))
        rows.append(("testlite.py, whole process, 1 frame", lite))
        if args.config and args.checkpoint:
            keras = [
                "--model",
                args.model,
                "--config",
                args.config,
                "--checkpoint",
                args.checkpoint,
            ]
            rows.append(
                (
                    "run.py, whole process, 1 frame",
                    whole_process("run.py", [*keras, *flags], args.repeats),
                )
            )
        load = []
        body, kind = form(args.source, args.driving, {"relative": "true", "adapt_scale": "true"})
        for clients in CLIENTS:
            total = clients * args.jobs_per_client
            began = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                results = list(pool.map(lambda _: job(url, body, kind, 0.2), range(total)))
            wall = time.perf_counter() - began
            latencies = [s for s, e in results if e is None]
            errors = [e for _, e in results if e]
            load.append(
                (
                    clients,
                    total,
                    len(latencies) * 60 / wall,
                    percentile(latencies, 50),
                    percentile(latencies, 95),
                    len(errors),
                )
            )
            for error in errors[:3]:
                print(f"error: {error}", file=sys.stderr)
        metrics = call(f"{url}/metrics")[1].decode()
        server_errors = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("fomm_http_requests_total") and 'code="5' in line
        )
    finally:
        server.terminate()
        server.wait(60)
        log.close()
    cpu = cpu_name()
    print(
        f"\n{args.model}{' ' + args.quantize if args.quantize else ''}, {cpu}, "
        f"{os.cpu_count()} cores, {datetime.date.today()}, Python {platform.python_version()}"
    )
    print("\n| what | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")
    print("\n| clients | jobs | jobs/min | p50 latency (s) | p95 latency (s) | failed or lost |")
    print("|---|---|---|---|---|---|")
    for clients, total, rate, p50, p95, errors in load:
        print(f"| {clients} | {total} | {rate:.1f} | {p50:.2f} | {p95:.2f} | {errors} |")
    print(f"\nserver errors (5xx) in /metrics: {server_errors:g}")


def call_ok(url):
    try:
        return call(url)[0] == 200
    except OSError:
        return False


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(
            line.split(":", 1)[1].strip()
            for line in out.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
