"""The web page (web/index.html) in a real headless Chromium, and build.py --web.

The page's frames match the original's (tests/fixtures/*/reference.npz, whose inputs are exact
8-bit images, as the page's PNG inputs are) within 1 level; a person's path (file inputs,
Animate, a playable WebM and a ZIP of PNG frames) runs on the example files; bad input gives
a message in the page.
"""

import base64
import io
import os
import zipfile

import browser
import numpy as np
import pytest
from helpers import (
    CASES,
    demo,
    reference,
    tiny_model,
)
from skimage import img_as_ubyte

ROOT = browser.ROOT
MODES = {"abs": (False, False), "rel_adapt": (True, True)}  # reference.npz predictions
# README.md's screenshot; the test replaces it when FOMM_SCREENSHOT=1 (so that a test run
# leaves the committed file alone otherwise).
SCREENSHOT = ROOT / "docs" / "web-page.png"


def browser_or_skip():
    reason = browser.missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests must run in CI: {reason}")
        pytest.skip(f"no browser here: {reason}")


@pytest.fixture(scope="module")
def page(request):
    """(driver, base URL) of the page served with the tiny web models."""
    browser_or_skip()
    web_models = request.getfixturevalue("web_models")
    with browser.serve(web_models) as url, browser.chromium() as driver:
        browser.open_page(driver, url)
        yield driver, url


def animate(driver, case, source, driving, mode):
    try:
        return browser.animate_frames(driver, case, source, driving, *MODES[mode])
    except RuntimeError:
        for entry in driver.get_log("browser"):
            print(entry)
        raise


@pytest.mark.slow
@pytest.mark.parametrize("build", ["", "-litert"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_frames_match_the_original_within_one_level(page, case, mode, build):
    """The float32 builds: --web (ONNX Runtime Web) and --web_litert (LiteRT.js, batch 1: the
    3 frames run one at a time; its bottleneck by Winograd's F(4x4, 3x3))."""
    driver, _ = page
    ref = reference(case)
    frames = animate(driver, case + build, ref["source_uint8"], ref["driving_uint8"], mode)
    expected = img_as_ubyte(ref[f"prediction_{mode}"])
    assert frames.shape == expected.shape
    diff = np.abs(frames.astype(int) - expected).max()
    assert diff <= 1, f"{case}{build} {mode}: {diff} levels off"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_demo_frames_match_the_python_pipeline(page, case):
    """demo.py's inputs (tests/fixtures/*/demo), resized as the pipeline does and rounded to
    8 bits (the page takes PNGs): 8 frames, two batches of 4, relative motion from frame 0.
    The Python pipeline (Keras models) on the same 8-bit frames gives the same frames within
    1 level. (The fixtures' demo frames come from unrounded float frames, so they are not the
    reference for 8-bit inputs; reference.npz is, above.)"""
    import imageio.v2 as imageio

    from modules.app.images import resize_frame
    from modules.app.pipeline import Animation, Settings

    driver, _ = page
    folder = demo(case)
    source = img_as_ubyte(resize_frame(imageio.imread(folder / "source.png"), (256, 256)))
    driving = np.stack(
        [img_as_ubyte(resize_frame(f, (256, 256))) for f in imageio.mimread(folder / "driving.mp4")]
    )
    frames = animate(driver, case, source, driving, "rel_adapt")

    models = tiny_model(case)
    animation = Animation(models, Settings(relative=True, adapt_scale=True))
    source_f = source[None].astype(np.float32) / 255
    kp_source = models.kp_detector(image=source_f)
    encoded = models.encode_source(source_image=source_f)
    driving_f = driving.astype(np.float32) / 255
    kp_initial = models.kp_detector(image=driving_f[:1])
    expected = np.concatenate(
        [
            img_as_ubyte(
                animation.animate_batch(driving_f[i : i + 4], encoded, kp_source, kp_initial)[2]
            )
            for i in range(0, len(driving_f), 4)
        ]
    )
    assert frames.shape == expected.shape == (8, 256, 256, 3)
    diff = np.abs(frames.astype(int) - expected).max()
    assert diff <= 1, f"{case}: {diff} levels off"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_int8_frames_are_within_35_db_of_float32(page, case):
    """--web_int8 in the page: the reference inputs, relative motion and adapted scale, give
    frames at 35 dB PSNR or more against the float32 model's frames."""
    driver, _ = page
    ref = reference(case)
    inputs = ref["source_uint8"], ref["driving_uint8"], "rel_adapt"
    float32 = animate(driver, case, *inputs)
    reduced = animate(driver, f"{case}-int8", *inputs)
    assert reduced.shape == float32.shape
    assert 35 <= browser.psnr(reduced, float32) < float("inf")


@pytest.mark.slow
def test_a_plain_static_server_gets_one_thread_per_core(page):
    """browser.serve is http.server without COOP/COEP headers: isolate.js's service worker
    isolates the page, and ONNX Runtime Web runs one WebAssembly thread per core (what it
    reports after a model ran); ?threads=1 asks for one."""
    driver, url = page
    frame = np.full((1, 256, 256, 3), 128, np.uint8)
    cores = driver.execute_script("return navigator.hardwareConcurrency")
    for query, threads in (("", cores), ("?threads=1", 1)):
        browser.open_page(driver, url + query)
        isolation = driver.execute_script("return [self.crossOriginIsolated, window.fommIsolation]")
        assert isolation == [True, "isolated"]
        animate(driver, "tiny-vox", frame[0], frame, "abs")
        assert driver.execute_script("return window.fomm.threads()") == threads
        footer = driver.execute_script("return document.getElementById('runtime').textContent")
        assert footer.endswith(f"{threads} thread{'s' if threads > 1 else ''}"), footer
    browser.open_page(driver, url)


@pytest.mark.slow
def test_a_server_with_the_headers_needs_no_service_worker(web_models):
    """With COOP/COEP from the server the page is isolated as it loads, and isolate.js
    registers nothing."""
    browser_or_skip()
    with browser.serve(web_models, isolated=True) as url, browser.chromium() as driver:
        browser.open_page(driver, url)
        isolation = driver.execute_script("return [self.crossOriginIsolated, window.fommIsolation]")
        assert isolation == [True, "isolated"]
        registrations = driver.execute_async_script(
            "navigator.serviceWorker.getRegistrations().then((r) => arguments[0](r.length))"
        )
        assert registrations == 0
        cores = driver.execute_script("return navigator.hardwareConcurrency")
        assert driver.execute_script("return window.fomm.threads()") == cores


@pytest.mark.slow
def test_a_changed_litert_file_is_refused_with_what_to_do(page, web_models):
    """A --web_litert model whose generator.tflite changed since build.py wrote it: the page
    refuses it before LiteRT.js loads it, and says how to rebuild."""
    import shutil

    driver, _ = page
    broken = web_models / "tiny-vox-litert-changed"
    shutil.copytree(web_models / "tiny-vox-litert", broken)
    data = bytearray((broken / "generator.tflite").read_bytes())
    data[len(data) // 2] ^= 1
    (broken / "generator.tflite").write_bytes(bytes(data))
    ref = reference("tiny-vox")
    try:
        with pytest.raises(RuntimeError) as error:
            browser.animate_frames(
                driver, broken.name, ref["source_uint8"], ref["driving_uint8"][:1], False, False
            )
    finally:
        shutil.rmtree(broken)
    message = str(error.value)
    assert "generator.tflite does not match its manifest" in message, message
    assert "python build.py --model" in message and "--web_litert" in message, message


@pytest.mark.slow
def test_model_not_built_for_the_web_says_so(page):
    driver, _ = page
    ref = reference("tiny-vox")
    with pytest.raises(
        RuntimeError,
        match=r'Model "vox" is not built for the web .*python build.py --model vox --web',
    ):
        browser.animate_frames(
            driver, "vox", ref["source_uint8"], ref["driving_uint8"][:1], False, False
        )


def wait_for_outcome(driver, timeout=300):
    """Waits until the page shows a result or a message; returns the message ('' if none)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: (
            d.find_element(By.ID, "result").is_displayed()
            or d.find_element(By.ID, "message").is_displayed()
        )
    )
    return driver.find_element(By.ID, "message").text


def choose(driver, url, model, source, driving, frames):
    from selenium.webdriver.common.by import By

    browser.open_page(driver, f"{url}?model={model}")
    if source:
        driver.find_element(By.ID, "source").send_keys(str(source))
    if driving:
        driver.find_element(By.ID, "driving").send_keys(str(driving))
    driver.find_element(By.ID, "max-frames").clear()
    driver.find_element(By.ID, "max-frames").send_keys(str(frames))
    driver.find_element(By.ID, "animate").click()


def blob(driver, element_id):
    """The bytes behind a download link's blob URL."""
    data = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(document.getElementById(arguments[0]).href).then((r) => r.arrayBuffer())
          .then((b) => { let s = ""; for (const x of new Uint8Array(b)) s += String.fromCharCode(x);
                         done(btoa(s)); });
        """,
        element_id,
    )
    return base64.b64decode(data)


@pytest.mark.slow
def test_a_person_animates_the_example_files(page, tmp_path):
    """File inputs, Animate, then a WebM that plays, a ZIP of PNG frames and the three panels;
    the screenshot of this state is README.md's (docs/web-page.png, FOMM_SCREENSHOT=1)."""
    import imageio.v2 as imageio

    driver, url = page
    frames = 12
    choose(
        driver,
        url,
        "tiny-vox",
        ROOT / "example" / "source.png",
        ROOT / "example" / "driving.mp4",
        frames,
    )
    assert wait_for_outcome(driver) == ""
    progress = driver.find_element("id", "progress-text").text
    assert progress.startswith(f"{frames} frames in ") and "frames/s" in progress

    # Plays: its time advances (waited for, not slept on: the machine may be busy).
    played = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const video = document.getElementById("result-video");
        const timer = setTimeout(() => done({error: "no playback within 30 s",
                                             time: video.currentTime}), 30000);
        video.addEventListener("timeupdate", function seen() {
          if (video.currentTime <= 0) return;
          video.removeEventListener("timeupdate", seen);
          clearTimeout(timer);
          done({width: video.videoWidth, time: video.currentTime, error: null});
        });
        video.currentTime = 0;
        video.play().catch((error) => done({error: String(error)}));
        """
    )
    assert played["error"] is None, played
    assert played["width"] == 256 and played["time"] > 0
    webm = blob(driver, "download-webm")
    assert webm[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file
    with zipfile.ZipFile(io.BytesIO(blob(driver, "download-png"))) as archive:
        names = archive.namelist()
        assert names == [f"{i:06d}.png" for i in range(frames)]
        last = imageio.imread(archive.read(names[-1]), format="png")
    assert last.shape[:2] == (256, 256)
    shot = SCREENSHOT if os.environ.get("FOMM_SCREENSHOT") == "1" else tmp_path / "page.png"
    assert driver.save_screenshot(str(shot))
    assert imageio.imread(shot).shape[1] >= 1024


@pytest.mark.slow
def test_example_files_button(page):
    from selenium.webdriver.common.by import By

    driver, url = page
    browser.open_page(driver, f"{url}?model=tiny-mgif")
    driver.find_element(By.ID, "example").click()
    browser.wait_for_text(
        driver, "progress-text", "Example files chosen: source.png and driving.mp4 (25 frames/s)"
    )
    driver.find_element(By.ID, "max-frames").clear()
    driver.find_element(By.ID, "max-frames").send_keys("4")
    driver.find_element(By.ID, "animate").click()
    assert wait_for_outcome(driver) == ""
    assert driver.find_element(By.ID, "progress-text").text.startswith("4 frames in ")


@pytest.mark.slow
def test_example_files_replace_the_picked_files(page, tmp_path):
    """After other files were picked, the file inputs and the previews show the example
    files: what Animate will use."""
    import shutil

    import imageio.v2 as imageio
    from selenium.webdriver.common.by import By

    driver, url = page
    browser.open_page(driver, f"{url}?model=tiny-vox")
    imageio.imwrite(tmp_path / "blue.png", np.full((64, 96, 3), (0, 0, 255), np.uint8))
    shutil.copy(demo("tiny-vox") / "driving.mp4", tmp_path / "other.mp4")
    driver.find_element(By.ID, "source").send_keys(str(tmp_path / "blue.png"))
    driver.find_element(By.ID, "driving").send_keys(str(tmp_path / "other.mp4"))
    browser.wait_for_text(driver, "progress-text", "other.mp4: ")
    assert (browser.canvas_pixels(driver, "source-view") == (0, 0, 255)).all()

    driver.find_element(By.ID, "example").click()
    browser.wait_for_text(driver, "progress-text", "Example files chosen")
    names = driver.execute_script(
        "return ['source', 'driving'].map((id) => document.getElementById(id).files[0].name)"
    )
    assert names == ["source.png", "driving.mp4"]
    source = imageio.imread(ROOT / "example" / "source.png")[..., :3]  # 256x256, as the preview
    first = imageio.mimread(ROOT / "example" / "driving.mp4")[0]
    for element_id, expected in (("source-view", source), ("driving-view", first)):
        shown = browser.canvas_pixels(driver, element_id).astype(int)
        assert np.abs(shown - expected).mean() < 3, element_id


@pytest.mark.slow
def test_source_that_is_not_an_image_is_reported_when_picked(page, tmp_path):
    from selenium.webdriver.common.by import By

    driver, url = page
    browser.open_page(driver, f"{url}?model=tiny-vox")
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    driver.find_element(By.ID, "source").send_keys(str(bad))
    browser.wait_for_text(
        driver, "message", '"notes.png" is not an image this browser can read: give a PNG or JPEG.'
    )


@pytest.mark.slow
def test_video_the_browser_cannot_decode_gives_a_message(page, tmp_path):
    """The page's message, not the browser's (such as "DEMUXER_ERROR_COULD_NOT_OPEN:
    FFmpegDemuxer: open context failed"), when picked and on Animate."""
    from selenium.webdriver.common.by import By

    driver, url = page
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all " * 100)
    expected = (
        '"broken.mp4": the browser cannot decode it. Give an MP4 (H.264) or WebM (VP8/VP9) video.'
    )
    browser.open_page(driver, f"{url}?model=tiny-vox")
    driver.find_element(By.ID, "driving").send_keys(str(bad))
    browser.wait_for_text(driver, "message", "broken.mp4")
    assert driver.find_element(By.ID, "message").text == expected
    choose(driver, url, "tiny-vox", ROOT / "example" / "source.png", bad, 4)
    assert wait_for_outcome(driver, timeout=60) == expected


@pytest.mark.slow
def test_page_names_a_model_not_built_for_the_web(page):
    driver, url = page
    choose(driver, url, "vox", ROOT / "example" / "source.png", ROOT / "example" / "driving.mp4", 4)
    message = wait_for_outcome(driver, timeout=60)
    assert 'Model "vox" is not built for the web' in message
    assert "python build.py --model vox --web" in message
