"""Headless Chromium (Debian's chromium + chromium-driver, through Selenium) on the web page,
served from a local HTTP server on 127.0.0.1; shared by tests/test_web.py and
benchmarks/bench_web.py."""

import base64
import contextlib
import functools
import http.server
import io
import os
import pathlib
import shutil
import tempfile
import threading

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers' /dev/shm is often too small for the renderer
    "--window-size=1200,860",
)

# WebGPU in headless Chromium without a GPU: SwiftShader's Vulkan on the CPU.
WEBGPU_FLAGS = ("--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader")


def missing():
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install {package}; bash install.sh does it as root)"
    if not (WEB / "node_modules" / "onnxruntime-web").is_dir():
        return "web/node_modules/onnxruntime-web is missing (bash install.sh runs npm ci in web/)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (bash install.sh)"
    return None


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves web/, with /models/ taken from the server's ``models`` folder."""

    def translate_path(self, path):
        models = self.server.models
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if models is not None and clean.startswith("/models/"):
            relative = http.server.SimpleHTTPRequestHandler.translate_path(self, clean)
            return os.path.join(models, os.path.relpath(relative, str(WEB / "models")))
        return super().translate_path(path)

    def end_headers(self):
        if self.server.isolated:  # cross-origin isolation: lets ONNX Runtime Web use threads
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(models=None, isolated=False):
    """An HTTP server on 127.0.0.1 (a free port) for web/; yields its base URL. ``isolated``:
    with the headers that make the page cross-origin isolated."""
    handler = functools.partial(Handler, directory=str(WEB))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.models = str(models) if models else None
    server.isolated = isolated
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium(downloads=None, camera=None, gpu_flags=None):
    """A headless Chromium driven by chromedriver, with a fresh profile. ``camera``: a .y4m
    file that its fake camera plays (in a loop) to getUserMedia, allowed without a prompt.
    ``gpu_flags``: flags that replace ``--disable-gpu`` (e.g. WEBGPU_FLAGS)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fomm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        if gpu_flags is None or flag != "--disable-gpu":
            options.add_argument(flag)
    for flag in gpu_flags or ():
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    if camera:
        options.add_argument("--use-fake-ui-for-media-stream")
        options.add_argument("--use-fake-device-for-media-stream")
        options.add_argument(f"--use-file-for-fake-video-capture={camera}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if downloads:
        options.add_experimental_option(
            "prefs",
            {"download.default_directory": str(downloads), "download.prompt_for_download": False},
        )
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    # The HTTP client's default timeout (120 s) is shorter than a full-size model's load.
    driver.command_executor.client_config.timeout = 1800
    try:
        driver.set_script_timeout(1800)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, url):
    """Loads the page and waits for its module to define window.fomm, after isolate.js's
    service worker has isolated the page (a first visit reloads once) or given up."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 60, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return !!window.fomm && window.fommIsolation !== 'pending'"
            " && document.readyState === 'complete'"
        )
    )


def wait_for_text(driver, element_id, text, timeout=30):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: text in d.find_element(By.ID, element_id).text)


def png_data_url(image):
    """uint8 [H, W, 3] -> PNG data URL (exact pixels)."""
    import imageio.v2 as imageio

    buffer = io.BytesIO()
    imageio.imwrite(buffer, image, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def decode_png(url):
    import imageio.v2 as imageio

    head, data = url.split(",", 1)
    assert head == "data:image/png;base64", head
    return np.asarray(imageio.imread(io.BytesIO(base64.b64decode(data)), format="png"))


def canvas_pixels(driver, element_id):
    """What canvas ``element_id`` shows: uint8 [H, W, 3]."""
    url = driver.execute_script(
        "return document.getElementById(arguments[0]).toDataURL('image/png')", element_id
    )
    return decode_png(url)[..., :3]


def psnr(frames, reference):
    """PSNR in dB of uint8 frames against uint8 reference frames (inf when equal)."""
    mse = np.mean((np.asarray(frames, np.float64) - reference) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def animate_frames(driver, model, source, driving, relative, adapt_scale):
    """window.fomm.animateFrames on uint8 frames; returns uint8 [N, H, W, 3], or raises
    RuntimeError with the page's message."""
    result = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        window.fomm.animateFrames(arguments[0], arguments[1], arguments[2],
                                  {relative: arguments[3], adaptScale: arguments[4]})
          .then((frames) => done({frames}), (error) => done({error: String(error.message)}));
        """,
        model,
        png_data_url(source),
        [png_data_url(frame) for frame in driving],
        relative,
        adapt_scale,
    )
    if "error" in result:
        raise RuntimeError(result["error"])
    return np.stack([decode_png(url)[..., :3] for url in result["frames"]])


def float32_base64(array):
    """Little-endian float32 bytes of ``array`` in base64 (the bench pages' input format)."""
    return base64.b64encode(np.ascontiguousarray(array, "<f4").tobytes()).decode()


def base64_float32(text, shape):
    return np.frombuffer(base64.b64decode(text), "<f4").reshape(shape)


def open_bench_page(driver, url, page, name):
    """Loads web/bench/``page`` and waits for its module to define window.``name``."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "bench/" + page)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(f"return !!window.{name}"))


def call(driver, function, *args):
    """Awaits the page's ``function`` (e.g. ``window.webgpuBench.run``) on JSON ``args``."""
    return driver.execute_async_script(
        f"const done = arguments[arguments.length - 1];"
        f"Promise.resolve({function}(...Array.from(arguments).slice(0, -1))).then(done, "
        f"(e) => done({{error: String(e)}}));",
        *args,
    )
