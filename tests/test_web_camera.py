"""The web page's camera (web/camera.js) in a real headless Chromium whose fake camera plays a
file: example/driving.mp4 with red bars left and right (384x256), so that a frame the page
squashed instead of centre-cropping shows red.

window.fomm.liveFrames's results equal window.fomm.animateFrames's on the camera frames it
used within 1 level; the Camera button shows frames/s and latency, resets the reference frame
and records a WebM.
"""

import re
import subprocess

import browser
import numpy as np
import pytest
from helpers import build
from test_web import blob, browser_or_skip

ROOT = browser.ROOT
MODEL = "tiny-vox"
SIZE = 256  # the model's frame size
BAR = 64  # the red bars' width: the camera's frames are (SIZE + 2 * BAR) x SIZE
FRAMES = 30  # the file's frames (Chromium's fake camera plays it in a loop, at 25 frames/s)
RED = (255, 0, 0)


@pytest.fixture(scope="module")
def camera_frames(tmp_path_factory):
    """(the .y4m file the fake camera plays, its RGB frames [N, SIZE, SIZE + 2 * BAR, 3])."""
    import imageio_ffmpeg

    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    pad = f"pad={SIZE + 2 * BAR}:{SIZE}:{BAR}:0:red"
    subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(ROOT / "example" / "driving.mp4"), "-vf", pad]
        + ["-frames:v", str(FRAMES), "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    raw = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return path, np.frombuffer(raw, np.uint8).reshape(FRAMES, SIZE, SIZE + 2 * BAR, 3)


@pytest.fixture(scope="module")
def camera_page(tmp_path_factory, camera_frames):
    """(driver, base URL): the page with the tiny-vox web model, in a Chromium with the fake
    camera."""
    browser_or_skip()
    root = tmp_path_factory.mktemp("web-build")
    build(MODEL, root, "--nolite", "--web", "--web_models", str(root / "models"))
    with browser.serve(root / "models") as url, browser.chromium(camera=camera_frames[0]) as driver:
        open_page(driver, url)
        yield driver, url


def open_page(driver, url):
    """The page, once camera.js (a module of its own) has run too."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.open_page(driver, f"{url}?model={MODEL}")
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return !!window.fomm.liveFrames"))


def source():
    import imageio.v2 as imageio

    return imageio.imread(ROOT / "example" / "source.png")[..., :3]


def live_frames(driver, n, relative, adapt_scale):
    """window.fomm.liveFrames: (captured, animated), uint8 [n, H, W, 3] each."""
    result = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        window.fomm.liveFrames(arguments[0], arguments[1], arguments[2],
                               {relative: arguments[3], adaptScale: arguments[4]})
          .then(done, (error) => done({error: String(error.message)}));
        """,
        MODEL,
        browser.png_data_url(source()),
        n,
        relative,
        adapt_scale,
    )
    assert "error" not in result, result
    return tuple(
        np.stack([browser.decode_png(url)[..., :3] for url in result[key]])
        for key in ("captured", "animated")
    )


@pytest.fixture(scope="module")
def live(camera_page):
    """liveFrames on 6 camera frames, relative motion with adapted scale."""
    return live_frames(camera_page[0], 6, True, True)


@pytest.mark.slow
def test_live_frames_match_animate_frames_on_the_frames_used(camera_page, live):
    """captured[0] is the initial frame: animateFrames on the captured frames (whose first is
    its initial frame) gives the live results within 1 level."""
    driver, _ = camera_page
    captured, animated = live
    assert captured.shape == animated.shape == (6, SIZE, SIZE, 3)
    assert len({frame.tobytes() for frame in captured}) > 1  # the camera's frames, moving
    expected = browser.animate_frames(driver, MODEL, source(), captured, True, True)
    diff = np.abs(animated.astype(int) - expected).max()
    assert diff <= 1, f"{diff} levels off"


@pytest.mark.slow
def test_live_frames_without_relative_motion(camera_page):
    driver, _ = camera_page
    captured, animated = live_frames(driver, 2, False, False)
    expected = browser.animate_frames(driver, MODEL, source(), captured, False, False)
    assert np.abs(animated.astype(int) - expected).max() <= 1


@pytest.mark.slow
def test_camera_frames_are_centre_cropped_not_squashed(camera_frames, live):
    """Each frame used is the centred square of one of the camera's frames (up to the
    browser's YUV to RGB conversion), with none of the red bars."""
    frames = camera_frames[1].astype(int)
    centres = frames[:, :, BAR : BAR + SIZE]
    squashed = frames[:, :, :: (SIZE + 2 * BAR) // (SIZE // 2)].repeat(2, axis=2)[:, :, :SIZE]
    for frame in live[0].astype(int):
        crop = np.abs(centres - frame).mean(axis=(1, 2, 3)).min()
        squash = np.abs(squashed - frame).mean(axis=(1, 2, 3)).min()
        assert crop < 3, f"the closest centre of a camera frame is {crop:.1f} levels off"
        assert squash > 10 * crop
        edges = np.concatenate([frame[:, :4], frame[:, -4:]]).reshape(-1, 3)
        assert np.abs(edges - RED).sum(axis=1).min() > 60, "red from the bars"


def redrawn(driver, element_id, before, timeout=60):
    """Waits until canvas `element_id` shows something else than `before`; returns it."""
    from selenium.webdriver.support.ui import WebDriverWait

    def changed(d):
        now = browser.canvas_pixels(d, element_id)
        return None if np.array_equal(now, before) else [now]  # (an array has no truth value)

    return WebDriverWait(driver, timeout).until(changed)[0]


@pytest.mark.slow
def test_camera_button(camera_page):
    """Camera: live frames/s and latency, the crop said on the page; Reset reference frame
    takes a new one; Record gives a WebM; Camera again stops it."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, url = camera_page
    open_page(driver, url)
    driver.find_element(By.ID, "source").send_keys(str(ROOT / "example" / "source.png"))
    click = driver.find_element(By.ID, "camera").click
    click()

    def stats(d):
        return re.fullmatch(
            r"(\d+\.\d) frames/s, latency (\d+) ms", d.find_element(By.ID, "camera-stats").text
        )

    WebDriverWait(driver, 120).until(stats)
    fps, latency = (float(x) for x in stats(driver).groups())
    assert fps > 0 and 0 <= latency < 60000
    assert driver.find_element(By.ID, "camera").text == "Stop camera"
    assert driver.find_element(By.ID, "camera-crop").text == (
        f"camera {SIZE + 2 * BAR}x{SIZE}: its centred {SIZE}x{SIZE} square "
        f"(cropped, not squashed), scaled to {SIZE}x{SIZE}"
    )
    assert not driver.find_element(By.ID, "message").is_displayed()

    reference = browser.canvas_pixels(driver, "reference-view")
    # The fake camera loops 30 frames, so a reset may take the very frame the reference
    # shows (1 time in 30): then the canvas is redrawn the same, and another reset decides.
    for attempt in range(3):
        driver.find_element(By.ID, "camera-reset").click()
        try:
            redrawn(driver, "reference-view", reference, timeout=20)
            break
        except TimeoutException:
            if attempt == 2:
                raise

    record = driver.find_element(By.ID, "camera-record")
    record.click()
    assert record.text == "Stop recording"
    shown = browser.canvas_pixels(driver, "live-view")
    for _ in range(3):  # a few results drawn while it records
        shown = redrawn(driver, "live-view", shown)
    record.click()
    link = driver.find_element(By.ID, "download-camera")
    WebDriverWait(driver, 60).until(lambda d: link.is_displayed())
    webm = blob(driver, "download-camera")
    assert webm[:4] == b"\x1a\x45\xdf\xa3" and len(webm) > 1000  # EBML: a WebM file
    assert record.text == "Record"

    click()
    WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "camera").text == "Camera")
    assert driver.find_element(By.ID, "animate").is_enabled()
    assert not driver.find_element(By.ID, "camera-record").is_enabled()


@pytest.mark.slow
def test_camera_without_a_source_says_what_to_do(camera_page):
    from selenium.webdriver.common.by import By

    driver, url = camera_page
    open_page(driver, url)
    driver.find_element(By.ID, "camera").click()
    browser.wait_for_text(driver, "message", "Pick a source image (or use the example files)")
