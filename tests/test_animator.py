"""``Animator`` (modules/animator.py), the notebook API: demo.py's final frames from each of
the three model sources, the same frames as the scripts, arrays in place of files, and one
ValueError for every input it cannot take."""

import numpy as np
import pytest
from helpers import (
    checkpoint_path,
    config_path,
    demo,
    model_args,
    read_frames,
    run_in_process,
    tiny_model,
)

from modules import Animator
from modules.app.images import load_image
from modules.app.video import VideoReader

MOTION = dict(relative=True, adapt_scale=True, best_frame=3)
FLAGS = ["--relative", "--adapt_scale", "--best_frame", "3"]
SCRIPTS = {"keras": "run.py", "savedmodel": "test.py", "tflite": "testlite.py"}


def animator(backend, built, case="tiny-vox"):
    if backend == "keras":
        return Animator.from_checkpoint(config_path(case), checkpoint_path(case))
    if backend == "savedmodel":
        return Animator.from_saved_model(built(case) / "saved_models" / case)
    return Animator.from_tflite(built(case) / "tflite" / case)


def demo_inputs(case="tiny-vox"):
    return str(demo(case) / "source.png"), str(demo(case) / "driving.mp4")


@pytest.mark.slow
@pytest.mark.parametrize("backend", SCRIPTS)
def test_frames_are_demo_frames_and_the_scripts_frames(tmp_path, built, backend):
    source, driving = demo_inputs()
    frames = np.stack(animator(backend, built).animate(source, driving, **MOTION))
    expected = np.load(demo("tiny-vox") / "expected.npz")["frames_rel_adapt_best3"]
    assert frames.dtype == np.uint8 and frames.shape == expected.shape
    assert np.abs(frames.astype(int) - expected).max() <= 1
    script = SCRIPTS[backend]
    args = [*model_args(script, "tiny-vox", built), "--source_image", source]
    run_in_process(script, [*args, "--driving_video", driving, "--output", f"{tmp_path}/", *FLAGS])
    np.testing.assert_array_equal(frames, read_frames(tmp_path))


@pytest.fixture(scope="module")
def keras():
    return Animator(tiny_model("tiny-vox"))


def test_arrays_give_the_frames_of_files(keras):
    source, driving = demo_inputs()
    want = keras.animate(source, driving, relative=True)
    with VideoReader(driving) as reader:
        frames = list(reader)
    image = load_image(source)[..., :3]
    np.testing.assert_array_equal(np.stack(keras.animate(image, frames, relative=True)), want)
    # float in [0, 1] is what skimage makes of uint8 before resizing: the same frames
    as_float = keras.animate(image / 255, np.stack(frames) / 255, relative=True)
    np.testing.assert_array_equal(np.stack(as_float), want)


def test_stream_yields_frames_one_by_one(keras):
    source, driving = demo_inputs()
    stream = keras.stream(source, driving)
    first = next(stream)
    assert first.shape == (256, 256, 3) and first.dtype == np.uint8
    assert len(list(stream)) == 7
    stream.close()


def test_find_best_frame_takes_the_scripts_choice(keras, capsys):
    source, driving = demo_inputs()
    frames = keras.animate(source, driving, relative=True, find_best_frame=True)
    best = int(capsys.readouterr().out.split("Best frame:")[1])
    assert len(frames) == 8
    chosen = keras.animate(source, driving, relative=True, best_frame=best)
    np.testing.assert_array_equal(np.stack(frames), np.stack(chosen))


GOOD = np.zeros((40, 30, 3), np.uint8)
BAD_SOURCES = {
    "int32": (np.zeros((40, 30, 3), np.int32), "int32; expected an HxWx3 array"),
    "4 channels": (np.zeros((40, 30, 4), np.uint8), r"shape \(40, 30, 4\)"),
    "grey": (np.zeros((40, 30), np.uint8), r"shape \(40, 30\)"),
    "0-255 floats": (np.full((40, 30, 3), 200.0), "values from 200 to 200"),
    "NaN": (np.full((40, 30, 3), np.nan), "values from nan"),
    "negative": (np.full((40, 30, 3), -0.5, np.float32), "values from -0.5"),
}


@pytest.mark.parametrize("case", BAD_SOURCES)
def test_a_bad_source_is_one_value_error(keras, case):
    source, match = BAD_SOURCES[case]
    with pytest.raises(ValueError, match=match):
        keras.animate(source, [GOOD])


@pytest.mark.parametrize(
    "driving, match",
    [
        ([], "driving has no frames"),
        (np.zeros((40, 30, 3), np.uint8), r"driving has shape \(40, 30, 3\)"),
        (5, "driving is a int"),
        ([GOOD, np.zeros((40, 30, 3), np.int64)], "driving frame 1 is int64"),
        ([GOOD.astype(np.float32) + 2], "driving frame 0 has values from 2 to 2"),
    ],
)
def test_bad_driving_frames_are_one_value_error(keras, driving, match):
    with pytest.raises(ValueError, match=match):
        keras.animate(GOOD, driving)


def test_bad_options_are_one_value_error(keras):
    with pytest.raises(ValueError, match="best_frame must be an integer of at least 0"):
        keras.animate(GOOD, [GOOD], best_frame=-1)
    with pytest.raises(ValueError, match="best_frame 1 is past the last of 1 frames"):
        keras.animate(GOOD, [GOOD], best_frame=1)
    with pytest.raises(ValueError, match="both choose the starting frame"):
        keras.animate(GOOD, [GOOD], best_frame=0, find_best_frame=True)
    with pytest.raises(ValueError, match="batch_size must be an integer of at least 1"):
        Animator(keras.models, batch_size=0)
    with pytest.raises(ValueError, match="quantize must be one of"):
        Animator.from_tflite("tflite/vox", quantize="int4")


def test_the_models_refuse_uint8_images():
    """load_model's models take float32 in [0, 1]; uint8 used to pass as values 0-255."""
    model = tiny_model("tiny-vox")
    with pytest.raises(ValueError, match="image is uint8; the models take float32 images"):
        model.kp_detector(image=np.zeros((1, 256, 256, 3), np.uint8))
    with pytest.raises(ValueError, match="source_image is uint8"):
        model.encode_source(source_image=np.zeros((1, 256, 256, 3), np.uint8))
