"""Source photos: demo.py's resize reproduced exactly with less memory, other colour modes
converted to RGB, photos above the size limit refused from their header, and a 48 Mpx photo
animated within 3 GB."""

import os
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from helpers import measured_run, png_header_only
from PIL import Image
from skimage.transform import resize

from modules.app.images import MAX_PIXELS, check_image, load_image, resize_frame
from modules.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-vox")


def photos():
    rng = np.random.default_rng(0)
    return {
        "astronaut": skimage.data.astronaut(),
        "chelsea": skimage.data.chelsea(),  # 300 x 451, not square
        "coffee": skimage.data.coffee(),
        "camera (grey)": skimage.data.camera(),
        "noise rgba": rng.integers(0, 256, (301, 203, 4), dtype=np.uint8),
        "noise grey+alpha": rng.integers(0, 256, (97, 140, 2), dtype=np.uint8),
        "noise uint16": rng.integers(0, 65536, (400, 500, 3), dtype=np.uint16),
        "small (upscaled)": rng.integers(0, 256, (120, 90, 3), dtype=np.uint8),
    }


@pytest.mark.parametrize("name", photos())
@pytest.mark.parametrize("shape", [(256, 256), (64, 64), (384, 512)])
def test_resize_equals_demo_py_bit_for_bit(name, shape):
    """demo.py: resize(image, frame_shape)[..., :3] on the whole float64 image (grey repeated
    to RGB as the scripts always did)."""
    image = photos()[name]
    expected = resize(image, shape)
    if expected.ndim == 2:
        expected = expected[..., None]
    if expected.shape[-1] < 3:
        expected = np.repeat(expected[..., :1], 3, axis=-1)
    np.testing.assert_array_equal(resize_frame(image, shape), expected[..., :3])


@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
def test_frame_of_the_model_size_equals_demo_py_bit_for_bit(channels):
    """A uint8 frame that already has the model's size skips skimage (its resize to the same
    shape is img_as_float): the same float64 numbers as demo.py's resize."""
    shape = (256, 256) if channels is None else (256, 256, channels)
    image = np.random.default_rng(channels).integers(0, 256, shape, dtype=np.uint8)
    expected = resize(image, (256, 256))
    if expected.ndim == 2:
        expected = expected[..., None]
    if expected.shape[-1] < 3:
        expected = np.repeat(expected[..., :1], 3, axis=-1)
    frame = resize_frame(image, (256, 256))
    assert frame.dtype == np.float64 and frame.flags.c_contiguous
    np.testing.assert_array_equal(frame, expected[..., :3])


def test_frame_of_the_model_size_does_not_import_skimage_transform():
    """Importing skimage.transform (scipy.ndimage, scipy.spatial) costs about 0.25 s of every
    script's start; frames that need no resizing must not pay it."""
    code = (
        "import sys, numpy as np; from modules.app import pipeline; "
        "pipeline.resize_frame(np.zeros((64, 48, 3), np.uint8), (64, 48)); "
        "print('skimage.transform' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def save(tmp_path, name, image, mode=None, **kwargs):
    path = tmp_path / name
    image = Image.fromarray(image)
    (image.convert(mode) if mode else image).save(path, **kwargs)
    return str(path)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    """Used as RGB, a CMYK JPEG's channels would be cyan, magenta, yellow: wrong colours."""
    astronaut = skimage.data.astronaut()
    loaded = load_image(save(tmp_path, "cmyk.jpg", astronaut, "CMYK", quality=95))
    assert loaded.shape == astronaut.shape and loaded.dtype == np.uint8
    assert np.abs(loaded.astype(int) - astronaut).mean() < 4  # JPEG noise only


@pytest.mark.parametrize(
    "mode, suffix", [("P", "png"), ("LA", "png"), ("1", "png"), ("L", "jpg"), ("I;16", "png")]
)
def test_other_colour_modes(tmp_path, mode, suffix):
    astronaut = skimage.data.astronaut()
    if mode == "I;16":
        path = save(tmp_path, "grey16.png", astronaut[..., 1].astype(np.uint16) * 257)
        grey = astronaut[..., 1]
    else:
        path = save(tmp_path, f"image.{suffix}", astronaut, mode)
        grey = np.asarray(Image.fromarray(astronaut).convert("L"))
    frame = resize_frame(load_image(path), (128, 128))
    assert frame.shape == (128, 128, 3) and frame.dtype == np.float64
    assert 0 <= frame.min() and frame.max() <= 1
    reference = resize(astronaut if mode == "P" else grey, (128, 128))
    if reference.ndim == 2:
        reference = np.repeat(reference[..., None], 3, axis=-1)
    tolerance = {"P": 0.06, "1": 0.5}.get(mode, 0.02)  # palette and bilevel quantize
    assert np.abs(frame - reference).mean() < tolerance


@pytest.mark.parametrize("side", [15_000, 30_000], ids=["225Mpx", "900Mpx"])
def test_above_the_limit_refused_from_the_header(tmp_path, side):
    path = png_header_only(tmp_path / "huge.png", side, side)
    assert side * side > MAX_PIXELS
    for read in (check_image, load_image):
        with pytest.raises(InputError, match="too large") as error:
            read(path)
        assert "huge.png" in str(error.value) and "200 Mpx" in str(error.value)


def test_below_the_limit_header_passes(tmp_path):
    path = png_header_only(tmp_path / "big.png", 14_000, 14_000)  # 196 Mpx, no pixel data
    assert check_image(path) == path  # the header is fine; decoding comes later
    with pytest.raises(InputError, match="Cannot read image"):
        load_image(path)


@pytest.mark.slow
def test_48_megapixel_photo_animates_within_3_gb(tmp_path):
    photo = Image.fromarray(skimage.data.astronaut()).resize((8000, 6000), Image.BILINEAR)
    path = tmp_path / "photo.jpg"
    photo.save(path, quality=90)
    del photo
    with open(tmp_path / "stderr", "w+") as err:
        code, peak, _ = measured_run(
            [sys.executable, os.path.join(ROOT, "run.py"), "--model", "tiny-vox"]
            + ["--config", os.path.join(TINY, "config.yaml")]
            + ["--checkpoint", os.path.join(TINY, "tiny-vox-cpk.pth.tar")]
            + ["--source_image", str(path), "--frames", "2", "--output", str(tmp_path / "o.mp4")],
            err,
        )
        err.seek(0)
        assert code == 0, err.read()[-2000:]
    peak_gib = peak / 2**20
    print(f"peak RSS {peak_gib:.2f} GiB")
    assert peak_gib <= 3, f"peak RSS {peak_gib:.2f} GiB"
