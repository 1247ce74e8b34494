"""The web page's faces (web/faces.js) in a real headless Chromium against the scripts' --crop
and --paste_back on the same scenes (tests/face_scenes.py: scikit-image's photos): the same
face boxes within 2 pixels, the same crop boxes for a source and a driving clip, and the
paste-back invariant; without a crop, a non-square video is centre-cropped, not squashed, and
the page says so. The detector is the one build.py --web writes (web/models/mtcnn/)."""

import io
import json
import os
import re
import zipfile

import browser
import imageio.v2 as imageio
import numpy as np
import pytest
from face_scenes import astronaut, astronaut_scene, background, compose, scaled, two_faces
from helpers import build
from test_cli_messages import run_without
from test_web import blob, browser_or_skip, wait_for_outcome

pytestmark = pytest.mark.slow
TOLERANCE = 2  # pixels, on every box coordinate


@pytest.fixture(scope="module")
def web_models(tmp_path_factory):
    """build.py --web for tiny-vox: its models and the face detector."""
    root = tmp_path_factory.mktemp("web-faces")
    build("tiny-vox", root, "--nolite", "--web", "--web_models", str(root / "models"))
    return root / "models"


@pytest.fixture(scope="module")
def page(web_models):
    browser_or_skip()
    with browser.serve(web_models) as url, browser.chromium() as driver:
        browser.open_page(driver, url)
        yield driver, url


def call(driver, function, *args):
    """window.fomm[function](...args); raises RuntimeError with the page's message."""
    result = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        window.fomm[arguments[0]](...arguments[1])
          .then((value) => done({value}), (error) => done({error: String(error.message || error)}));
        """,
        function,
        list(args),
    )
    if "error" in result:
        raise RuntimeError(result["error"])
    return result["value"]


def assert_boxes_close(page_boxes, python_boxes):
    assert len(page_boxes) == len(python_boxes), (page_boxes, python_boxes)
    for got, expected in zip(page_boxes, python_boxes):
        diff = np.abs(np.subtract(got, expected)).max()
        assert diff <= TOLERANCE, (got, expected)


def one_face():
    return astronaut_scene(0.6, (250, 30), shape=(360, 640))


SCENES = {
    "one face 640x360": one_face,
    "1280x720 (downscaled to 1024 first)": astronaut_scene,
    "mirrored, full size": lambda: astronaut_scene(1.0, (700, 100), mirror=True),
    "two faces": two_faces,
    "no face": lambda: (background((300, 400), seed=2), []),
}


def test_build_web_writes_the_face_detector(web_models):
    import onnxruntime

    folder = web_models / "mtcnn"
    meta = json.loads((folder / "faces.json").read_text())
    assert meta["format"] == "fomm-faces-1"
    assert meta["detection_side"] == 1024 and meta["min_confidence"] == 0.9
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    assert sorted(listed) == sorted(["faces.json", *meta["files"].values()])
    for network, file in meta["files"].items():
        session = onnxruntime.InferenceSession(str(folder / file))
        assert [i.name for i in session.get_inputs()] == ["image"], network
    index = json.loads((web_models / "index.json").read_text())
    assert [m["name"] for m in index["models"]] == ["tiny-vox"]  # not a model of the menu


@pytest.mark.parametrize("scene", SCENES)
def test_face_boxes_match_python(page, scene):
    from modules.app.faces import detect_faces

    driver, _ = page
    image, _ = SCENES[scene]()
    found = call(driver, "detectFaces", browser.png_data_url(image))
    assert_boxes_close([f["box"] for f in found], [f.box for f in detect_faces(image)])


def drifting_video(path, frames=40, shape=(320, 480)):
    """The astronaut drifting right and down over a background (real frames, H.264)."""
    from modules.app.video_writer import VideoWriter

    photo, box = scaled(*astronaut(), 0.45)
    with VideoWriter(path, 10) as writer:
        for i in range(frames):
            writer.append(compose(shape, [(photo, box, (20 + 3 * i, 10 + i))], seed=1)[0])


def test_crop_boxes_match_python(page, tmp_path):
    """--crop's source box and its one box for a driving clip of 40 frames (16 sampled: every
    2nd), on the frames as Python decodes them."""
    from modules.app.framing import driving_face, source_faces
    from modules.app.video import VideoReader

    driver, _ = page
    source, _ = one_face()
    video = tmp_path / "drifting.mp4"
    drifting_video(video)
    with VideoReader(video) as reader:
        frames = list(reader)
    with VideoReader(video) as reader:
        expected_driving = driving_face(reader)
    expected_source = source_faces(source, "source.png")[0]
    boxes = call(
        driver,
        "cropBoxes",
        browser.png_data_url(source),
        [browser.png_data_url(f) for f in frames],
    )
    assert_boxes_close([boxes["source"], boxes["driving"]], [expected_source, expected_driving])


def test_crop_without_a_face_says_so(page):
    driver, _ = page
    empty = browser.png_data_url(background((200, 300)))
    with pytest.raises(RuntimeError, match="^No face found in the source image: untick Crop"):
        call(driver, "cropBoxes", empty, [empty])


def test_paste_back_changes_only_the_box(page):
    """The astronaut photo with a 256x256 crop of another photo pasted into its face box:
    every pixel outside the box is the photo's, the box changed, and it is what paste.py
    gives within a few levels (the browser gets the animation as 8-bit PNG)."""
    import skimage.data as data
    from skimage import img_as_ubyte
    from skimage.transform import resize

    from modules.app.paste import paste

    driver, _ = page
    photo, _ = astronaut()
    animated = img_as_ubyte(resize(data.coffee()[:, 100:500], (256, 256), anti_aliasing=True))
    box = call(driver, "cropBoxes", browser.png_data_url(photo), [browser.png_data_url(photo)])
    box = box["source"]
    result = browser.decode_png(
        call(
            driver,
            "pasteBack",
            browser.png_data_url(photo),
            browser.png_data_url(animated),
            box,
        )
    )[..., :3]
    x, y, w, h = box
    inside = np.zeros(photo.shape[:2], bool)
    inside[y : y + h, x : x + w] = True
    assert result.shape == photo.shape
    assert np.array_equal(result[~inside], photo[~inside])
    assert (result[inside] != photo[inside]).any(axis=-1).mean() > 0.9
    expected = paste(photo, animated.astype(np.float32) / 255, tuple(box))
    assert np.abs(result.astype(int) - expected).max() <= 2


def animate_files(page, tmp_path, crop, paste_back, frames=2, scene=None, video_frames=8):
    """The page animates a photo (``scene``; default a 640x360 one_face) by a 480x320 video of
    ``video_frames``, chosen with the file inputs, with *Crop to the face* / *Paste back* set
    and *frames* (0: all); returns (the photo, the page's message, its note)."""
    from selenium.webdriver.common.by import By

    driver, url = page
    scene = one_face()[0] if scene is None else scene
    imageio.imwrite(tmp_path / "photo.png", scene)
    drifting_video(tmp_path / "drifting.mp4", frames=video_frames)
    browser.open_page(driver, f"{url}?model=tiny-vox")
    driver.find_element(By.ID, "source").send_keys(str(tmp_path / "photo.png"))
    driver.find_element(By.ID, "driving").send_keys(str(tmp_path / "drifting.mp4"))
    for element, wanted in (("crop", crop), ("paste", paste_back)):
        if driver.find_element(By.ID, element).is_selected() != wanted:
            driver.find_element(By.ID, element).click()
    driver.find_element(By.ID, "max-frames").clear()
    driver.find_element(By.ID, "max-frames").send_keys(str(frames))
    driver.find_element(By.ID, "animate").click()
    message = wait_for_outcome(driver)
    return scene, message, driver.find_element(By.ID, "note").text


def zip_frames(driver):
    with zipfile.ZipFile(io.BytesIO(blob(driver, "download-png"))) as archive:
        return [imageio.imread(archive.read(n), format="png")[..., :3] for n in archive.namelist()]


def test_page_crops_to_the_face_and_pastes_back(page, tmp_path):
    """A person's path: the photo (640x360) and a video, both boxes found (the video's as
    Chromium decodes it) as --crop finds them, the result is the full photo with only the
    face's box changed."""
    from modules.app.framing import driving_face, source_faces
    from modules.app.video import VideoReader

    scene, message, note = animate_files(page, tmp_path, True, True)
    assert message == ""
    assert note.startswith("Cropped to the face: photo.png at ")
    box, driving_box = (
        [int(v) for v in m] for m in re.findall(r" at (\d+),(\d+),(\d+),(\d+)", note)
    )
    with VideoReader(tmp_path / "drifting.mp4") as reader:  # the 2 frames animated
        expected_driving = driving_face(reader, 2)
    assert_boxes_close([box, driving_box], [source_faces(scene, "photo.png")[0], expected_driving])
    x, y, w, h = box
    inside = np.zeros(scene.shape[:2], bool)
    inside[y : y + h, x : x + w] = True
    frames = zip_frames(page[0])
    assert len(frames) == 2
    for frame in frames:
        assert frame.shape == scene.shape
        assert np.array_equal(frame[~inside], scene[~inside])
        assert (frame[inside] != scene[inside]).any()


def test_non_square_video_is_centre_cropped_and_the_page_says_so(page, tmp_path):
    """Without a crop, the 480x320 video's middle 320x320 is animated (not the whole frame
    squashed into 256x256), and so is the 640x360 photo's middle; the page says so."""
    from skimage import img_as_ubyte
    from skimage.transform import resize

    from modules.app.video import VideoReader

    driver, _ = page
    scene, message, note = animate_files(page, tmp_path, False, False)
    assert message == ""
    assert "photo.png is 640x360: centre-cropped to its middle 360x360" in note
    assert "drifting.mp4 is 480x320: centre-cropped to its middle 320x320" in note
    assert "(not squashed)" in note
    with VideoReader(tmp_path / "drifting.mp4") as reader:
        frames = list(reader.frames(0, 2))

    def errors(canvas, images, middle):
        """Mean level differences of the canvas to each image's middle and to the image
        squashed (the best match of the images)."""
        shown = driver.execute_script(
            """
            const canvas = document.getElementById(arguments[0]);
            const [w, h] = [canvas.width, canvas.height];
            return [w, h, Array.from(canvas.getContext("2d").getImageData(0, 0, w, h).data)];
            """,
            canvas,
        )
        assert shown[:2] == [256, 256]
        view = np.array(shown[2], np.uint8).reshape(256, 256, 4)[..., :3].astype(int)

        def error(image):
            return np.abs(view - img_as_ubyte(resize(image, (256, 256), anti_aliasing=True))).mean()

        return min((error(i[:, middle]), error(i)) for i in images)

    for canvas, images, middle in (
        ("source-view", [scene], slice(140, 500)),
        ("driving-view", frames, slice(80, 400)),
    ):
        centre_error, squashed_error = errors(canvas, images, middle)
        assert centre_error < 3, (canvas, centre_error)
        assert squashed_error > 5 * centre_error, (canvas, squashed_error, centre_error)


def test_paste_back_needs_the_crop(page, tmp_path):
    _, message, _ = animate_files(page, tmp_path, False, True)
    assert message.startswith("Paste back pastes the animated face into the photo: tick Crop")


def test_paste_back_that_would_not_fit_in_memory_says_how_many_frames_fit(page, tmp_path):
    """60 frames pasted into a 3840x2160 photo (33 MB each) would need 1.9 GB: refused before
    any frame is animated, with the number of frames that fit in the page's 1.5 GB."""
    scene, _ = astronaut_scene(1.0, (700, 100), shape=(2160, 3840))
    _, message, _ = animate_files(page, tmp_path, True, True, 0, scene, video_frames=60)
    assert message == (
        "Paste back of 60 frames into a 3840x2160 photo needs 1.9 GB of memory: set frames "
        "to 48 or less, or use a smaller photo."
    )


def test_build_web_without_the_faces_extra_says_so(tmp_path):
    """The page's models build without mtcnn (refused by an import hook, as in an environment
    without it); the face detector is then one line of build.py's output, not an error."""
    code = (
        "from modules.export.build import Steps, build_web_faces\n"
        f"build_web_faces(Steps('tiny-vox'), {str(tmp_path)!r})"
    )
    result = run_without(["mtcnn"], "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[tiny-vox] note: the web page's face crop (build.py --web) needs the face detector "
        "mtcnn, which is not installed: python -m pip install 'fomm-tf[faces]' (in a checkout: "
        "bash install.sh)"
    ]
    assert os.listdir(tmp_path) == []


def test_missing_face_detector_says_how_to_build_it(tmp_path):
    """A page served without models/mtcnn/ (the faces extra was not installed at build time)."""
    browser_or_skip()
    (tmp_path / "models").mkdir()
    with browser.serve(tmp_path / "models") as url, browser.chromium() as driver:
        browser.open_page(driver, url)
        with pytest.raises(RuntimeError) as error:
            call(driver, "detectFaces", browser.png_data_url(background((64, 64))))
    assert str(error.value).startswith(
        "The face detector is not built (no models/mtcnn/faces.json)"
    )
    assert "fomm-tf[faces]" in str(error.value)
    assert os.listdir(tmp_path / "models") == []
