"""crop.py, and --crop / --paste_back / --multi_face / --source_box / --driving_box of the
animation scripts, end to end on scenes made of scikit-image's photos (tests/face_scenes.py),
with the tiny fixture model (random weights: the animated face is noise, which makes every
changed pixel easy to see)."""

import os

import imageio.v2 as imageio
import numpy as np
import pytest
from face_scenes import astronaut_scene, background, face_free, moving_video, two_faces
from helpers import FIXTURES, main_of, model_args

from modules.app.probe import count_frames, video_stream_info
from modules.app.video_writer import VideoWriter

DRIVING = FIXTURES / "tiny-vox" / "demo" / "driving.mp4"  # a face, 8 frames, with audio


def run(*flags, source, output, driving=DRIVING, script="run.py", built=None):
    """A script's main() in this process with the tiny model; returns its exit code."""
    args = [
        *model_args(script, "tiny-vox", built),
        "--source_image",
        str(source),
        "--driving_video",
        str(driving),
        "--output",
        str(output),
        *flags,
    ]
    try:
        return main_of(script)(args) or 0
    except SystemExit as exit:
        return exit.code


def saved(tmp_path, name, image):
    path = tmp_path / name
    imageio.imwrite(path, image)
    return path


def frames(folder):
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    return np.stack([imageio.imread(os.path.join(folder, n)) for n in names])


def around(box, shape, factor):
    """A mask of the pixels within ``factor`` times the face's size of the face's centre."""
    x, y, w, h = box
    half = factor * max(w, h) / 2
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    cx, cy = x + w / 2, y + h / 2
    return (np.abs(cols + 0.5 - cx) <= half) & (np.abs(rows + 0.5 - cy) <= half)


def check_pasted(result, scene, faces):
    """Every pixel away from the faces is the source's, exactly; each face changed."""
    assert result.shape == (len(result), *scene.shape)
    near = np.zeros(scene.shape[:2], bool)
    for face in faces:
        near |= around(face, scene.shape, 1.6)  # the pasted square is 1.2x the face box
        inside = around(face, scene.shape, 0.5)
        assert (result[:, inside] != scene[inside]).any(axis=-1).mean() > 0.5
    assert np.array_equal(result[:, ~near], np.broadcast_to(scene[~near], result[:, ~near].shape))


def one_face():
    return astronaut_scene(0.6, (250, 30), shape=(360, 640))


@pytest.mark.slow
@pytest.mark.parametrize(
    "scene,flags,count,script",
    [
        (one_face, ["--relative"], 8, "run.py"),
        (two_faces, ["--multi_face", "--frames", "3"], 3, "run.py"),
        (one_face, ["--frames", "3"], 3, "test.py"),
        (one_face, ["--frames", "3"], 3, "testlite.py"),
    ],
    ids=["one face", "multi face", "SavedModels", "TF Lite"],
)
def test_paste_back_changes_only_the_faces(tmp_path, built, scene, flags, count, script):
    """Each face is animated and pasted back; every other pixel is the source's, exactly."""
    scene, faces = scene()
    out = tmp_path / "frames"
    source = saved(tmp_path, "s.png", scene)
    flags = ["--crop", "--paste_back", *flags]
    assert run(*flags, source=source, output=f"{out}/", script=script, built=built) == 0
    result = frames(out)
    assert len(result) == count
    check_pasted(result, scene, faces)


@pytest.mark.slow
def test_paste_back_video_keeps_audio_and_full_size(tmp_path):
    scene, _ = one_face()
    out = tmp_path / "out.mp4"
    box = "250,30,307,307"  # by hand: the astronaut's photo
    code = run(
        "--source_box",
        box,
        "--paste_back",
        "--crop",
        "--audio",
        source=saved(tmp_path, "s.png", scene),
        output=out,
    )
    assert code == 0
    info = video_stream_info(out)
    assert info["audio"] is not None
    assert (info["video"]["width"], info["video"]["height"]) == (640, 360)
    assert count_frames(out) == 8


@pytest.mark.slow
def test_crop_writes_one_clip_per_face_track_with_its_audio(tmp_path):
    import crop

    video = tmp_path / "moving.mp4"
    moving_video(video, tmp_path, fps=10, frames=(20, 20))
    out = tmp_path / "clips"
    args = ["--input", str(video), "--output", str(out), "--min_frames", "10"]
    assert crop.main([*args, "--image_shape", "128,96"]) == 0
    clips = sorted(os.listdir(out))
    assert clips == ["moving_000.mp4", "moving_001.mp4"]
    for name in clips:
        info = video_stream_info(out / name)
        assert (info["video"]["width"], info["video"]["height"]) == (128, 96)
        assert count_frames(out / name) == 20
        assert info["audio"] is not None
        assert abs(info["duration"] - 2.0) < 0.15


def bricks(tmp_path):
    """A short video of a brick wall sliding by: no face."""
    video = tmp_path / "bricks.mp4"
    with VideoWriter(video, 10) as writer:
        for i in range(5):
            writer.append(np.roll(background((240, 320)), i, axis=1))
    return video


def expect_error(capsys, code, *words):
    """Exit code 2 and one line with ``words`` on stderr (besides crop.py's progress bar)."""
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if not line.startswith("faces: ")]
    assert code == 2 and len(err) == 1, err
    for word in words:
        assert word in err[0], err[0]


def test_no_face_in_the_source_is_one_line_and_writes_nothing(tmp_path, capsys):
    source = saved(tmp_path, "cat.png", face_free()[0][1])
    out = tmp_path / "out.mp4"
    expect_error(capsys, run("--crop", source=source, output=out), "cat.png", "--source_box")
    assert os.listdir(tmp_path) == ["cat.png"]


def test_no_face_in_the_driving_video_is_one_line_and_writes_nothing(tmp_path, capsys):
    scene, _ = astronaut_scene(0.5, (100, 30), shape=(300, 400))
    driving = bricks(tmp_path)
    source = saved(tmp_path, "s.png", scene)
    code = run("--crop", source=source, output=tmp_path / "out.mp4", driving=driving)
    expect_error(capsys, code, "bricks.mp4", "--driving_box")
    assert sorted(os.listdir(tmp_path)) == ["bricks.mp4", "s.png"]


def test_crop_without_a_face_track_is_one_line_and_writes_nothing(tmp_path, capsys):
    import crop

    video = bricks(tmp_path)
    try:
        code = crop.main(["--input", str(video), "--output", str(tmp_path / "clips")])
    except SystemExit as exit:
        code = exit.code
    expect_error(capsys, code, "bricks.mp4", "--min_frames 150")
    assert os.listdir(tmp_path) == ["bricks.mp4"]


@pytest.mark.parametrize(
    "flags,words",
    [
        (["--source_box", "300,0,101,50"], ["--source_box", "s.png", "400x300"]),
        (["--driving_box", "0,0,321,10"], ["--driving_box", "driving.mp4", "320x240"]),
        (["--source_box", "1,2,3"], ["--source_box", "x,y,w,h"]),
        (["--paste_back"], ["--crop"]),
        (["--crop", "--multi_face"], ["--paste_back"]),
    ],
)
def test_bad_boxes_and_flags_are_one_line(tmp_path, capsys, flags, words):
    scene, _ = astronaut_scene(0.5, (100, 30), shape=(300, 400))
    source = saved(tmp_path, "s.png", scene)
    expect_error(capsys, run(*flags, source=source, output=tmp_path / "out.mp4"), *words)
    assert os.listdir(tmp_path) == ["s.png"]
