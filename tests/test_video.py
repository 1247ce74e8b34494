"""modules.app.video on real files (ffmpeg from imageio-ffmpeg), no mocks."""

import os
import pathlib
import subprocess
import warnings

import imageio
import imageio_ffmpeg
import numpy as np
import pytest
from skimage.transform import resize

from modules.app.audio import add_audio
from modules.app.images import read_image, resize_frame
from modules.app.probe import count_frames, has_audio, video_stream_info
from modules.app.video import VideoReader
from modules.app.video_writer import VideoWriter
from modules.errors import InputError

DEMO = pathlib.Path(__file__).parent / "fixtures" / "tiny-vox" / "demo"
DRIVING = str(DEMO / "driving.mp4")
SOURCE = str(DEMO / "source.png")


def ffmpeg(*args):
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-nostdin", "-v", "error", *args], check=True
    )


def demo_frames(path):
    """demo.py's loop over imageio.get_reader."""
    reader = imageio.v2.get_reader(path)
    frames = []
    try:
        for im in reader:
            frames.append(im)
    except RuntimeError:
        pass
    reader.close()
    return frames


@pytest.fixture(scope="module")
def driving_frames():
    return [np.asarray(f) for f in demo_frames(DRIVING)]


def synthetic(n=6, h=48, w=64):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def leftovers(folder):
    return [n for n in os.listdir(folder) if ".tmp-" in n]


# ---------------------------------------------------------------------------------------------
# Images


def test_read_image_is_demo_recipe():
    img = read_image(SOURCE)
    expected = resize(imageio.v2.imread(SOURCE), (256, 256))[..., :3]
    assert img.dtype == np.float64 and img.shape == (256, 256, 3)
    np.testing.assert_array_equal(img, expected)
    assert read_image(pathlib.Path(SOURCE), (64, 96)).shape == (64, 96, 3)


def test_resize_frame_is_demo_recipe(driving_frames):
    frame = driving_frames[3]
    np.testing.assert_array_equal(resize_frame(frame), resize(frame, (256, 256))[..., :3])


@pytest.mark.parametrize("channels", [None, 2])  # L and LA PNGs
def test_read_image_grayscale_gives_rgb(tmp_path, channels):
    gray = np.asarray(imageio.v2.imread(SOURCE))[..., 0]
    img = gray if channels is None else np.stack([gray] * channels, axis=-1)
    path = tmp_path / "gray.png"
    imageio.v2.imwrite(path, img)
    out = read_image(path)
    assert out.shape == (256, 256, 3)
    expected = resize(gray, (256, 256))
    for c in range(3):
        np.testing.assert_allclose(out[..., c], expected, atol=1e-12)


def test_resize_frame_one_channel():
    gray = np.asarray(imageio.v2.imread(SOURCE))[..., :1]
    out = resize_frame(gray, (64, 64))
    assert out.shape == (64, 64, 3)
    np.testing.assert_array_equal(out[..., 2], resize(gray[..., 0], (64, 64)))


def test_read_image_rgba_drops_alpha(tmp_path):
    rgb = np.asarray(imageio.v2.imread(SOURCE))[..., :3]
    alpha = np.full(rgb.shape[:2] + (1,), 128, np.uint8)
    path = tmp_path / "rgba.png"
    imageio.v2.imwrite(path, np.concatenate([rgb, alpha], axis=-1))
    np.testing.assert_array_equal(read_image(path), resize(rgb, (256, 256)))


# ---------------------------------------------------------------------------------------------
# Reading video


def test_reader_matches_demo(driving_frames):
    with VideoReader(DRIVING) as reader:
        assert reader.fps == 25
        assert reader.size == (320, 240)
        assert reader.num_frames == 8
        frames = list(reader)
    assert len(frames) == 8 == len(driving_frames)
    for got, want in zip(frames, driving_frames):
        assert got.dtype == np.uint8 and got.shape == (240, 320, 3)
        np.testing.assert_array_equal(got, want)
    assert count_frames(DRIVING) == 8


def test_reader_ranges(driving_frames):
    with VideoReader(DRIVING) as reader:
        middle = list(reader.frames(2, 5))
        assert len(middle) == 3
        for got, want in zip(middle, driving_frames[2:5]):
            np.testing.assert_array_equal(got, want)
        assert len(list(reader.frames(6))) == 2
        assert list(reader.frames(3, 3)) == []
        assert len(list(reader.frames(5, 100))) == 3
        # another full pass after ranges
        np.testing.assert_array_equal(list(reader)[-1], driving_frames[-1])
        with pytest.raises(ValueError):
            list(reader.frames(4, 2))


def test_video_stream_info():
    info = video_stream_info(DRIVING)
    assert info["video"] == {"codec": "h264", "width": 320, "height": 240, "fps": 25.0}
    assert info["audio"]["codec"] == "aac"
    assert abs(info["duration"] - 0.32) < 1e-6
    assert has_audio(DRIVING)


# ---------------------------------------------------------------------------------------------
# Writing video


@pytest.mark.parametrize("ext", [".mp4", ".gif", ".webm", ".mkv"])
def test_writer_round_trip(tmp_path, driving_frames, ext):
    path = tmp_path / f"out{ext}"
    with VideoWriter(path, 25) as writer:
        for frame in driving_frames:
            writer.append(frame)
    assert leftovers(tmp_path) == []
    with VideoReader(path) as reader:
        assert reader.fps == 25
        frames = list(reader)
    assert len(frames) == 8 == count_frames(path)
    assert frames[0].shape == (240, 320, 3)
    error = np.abs(frames[4].astype(int) - driving_frames[4]).mean()
    assert error < 8, error


def test_writer_odd_size_mp4(tmp_path):
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 25) as writer:
        for frame in synthetic(5, 255, 255):
            writer.append(frame)
    assert count_frames(path) == 5
    assert video_stream_info(path)["video"]["codec"] == "h264"


@pytest.mark.parametrize("existing", [False, True])
def test_writer_png_frames_are_exact(tmp_path, existing):
    frames = synthetic()
    folder = tmp_path / "frames"
    if existing:
        folder.mkdir()
        (folder / "keep.txt").write_text("not ours")
        for i in range(10):  # frames of an earlier, longer run
            imageio.v2.imwrite(folder / f"{i:06d}.png", frames[0])
    path = str(folder) + ("" if existing else "/")
    with VideoWriter(path, 25, overwrite=existing) as writer:
        for frame in frames:
            writer.append(frame)
    names = sorted(os.listdir(folder))
    pngs = [n for n in names if n.endswith(".png")]
    # --overwrite replaces the frames written; the later ones of the longer run stay.
    assert pngs == [f"{i:06d}.png" for i in range(10 if existing else len(frames))]
    assert ("keep.txt" in names) == existing
    for name, frame in zip(pngs, frames + [frames[0]] * 4):
        np.testing.assert_array_equal(imageio.v2.imread(folder / name), frame)
    assert leftovers(tmp_path) == []


def test_writer_refuses_a_folder_of_frames(tmp_path):
    """A folder holding the user's numbered PNGs is refused before anything is written, and
    when frames appear there while the run writes, at the end; nothing of the folder changes."""
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(100):
        (folder / f"{i:06d}.png").write_bytes(b"user %d" % i)
    with pytest.raises(InputError, match="100 numbered PNG frame.*--overwrite"):
        VideoWriter(str(folder) + "/", 25)
    late = tmp_path / "late"
    with pytest.raises(InputError, match="000001.png.*--overwrite"):
        with VideoWriter(str(late) + "/", 25) as writer:
            for frame in synthetic(4):
                writer.append(frame)
            late.mkdir()
            (late / "000001.png").write_bytes(b"user")
    assert [p.read_bytes() for p in sorted(folder.iterdir())] == [
        b"user %d" % i for i in range(100)
    ]
    assert os.listdir(late) == ["000001.png"] and (late / "000001.png").read_bytes() == b"user"
    assert leftovers(tmp_path) == []
    # Other files do not count: the frames go in beside them.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    (other / "1.png").write_text("x")
    with VideoWriter(other, 25) as writer:
        writer.append(synthetic(1)[0])
    assert sorted(os.listdir(other)) == ["000000.png", "1.png", "notes.txt"]


class Boom(Exception):
    pass


@pytest.mark.parametrize("target", ["out.mp4", "out.gif", "frames/"])
@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_writer_is_atomic(tmp_path, target, exc):
    path = tmp_path / target
    # Nothing there before: nothing there after.
    with pytest.raises(exc):
        with VideoWriter(str(path) + ("/" if target.endswith("/") else ""), 25) as writer:
            for frame in synthetic():
                writer.append(frame)
            raise exc()
    assert os.listdir(tmp_path) == []

    # An existing output stays as it was.
    if target.endswith("/"):
        path.mkdir()
        imageio.v2.imwrite(path / "000000.png", synthetic(1)[0])
    else:
        path.write_bytes(b"previous result")
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(exc):
        with VideoWriter(path, 25, overwrite=True) as writer:
            for frame in synthetic():
                writer.append(frame)
            raise exc()
    after = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    assert leftovers(tmp_path) == []


def test_writer_abort_and_empty(tmp_path):
    writer = VideoWriter(tmp_path / "a.mp4", 25)
    writer.append(synthetic(1)[0])
    writer.abort()
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "b.mp4", 25):
            pass
    assert os.listdir(tmp_path) == []


def test_writer_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "a.mp4", 25) as writer:
            writer.append(np.zeros((8, 8, 3), np.float32))
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Audio


def write_mp4(path, frames, fps=25):
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.append(frame)


@pytest.mark.parametrize("ext", [".mp4", ".webm"])
def test_add_audio(tmp_path, driving_frames, ext):
    path = tmp_path / f"out{ext}"
    write_mp4(path, driving_frames)
    assert not has_audio(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert add_audio(path, DRIVING) is True
    info = video_stream_info(path)
    assert info["audio"] is not None
    assert info["audio"]["codec"] == ("aac" if ext == ".mp4" else "opus")
    assert count_frames(path) == 8
    assert leftovers(tmp_path) == []


def test_add_audio_cut(tmp_path, driving_frames):
    path = tmp_path / "out.mp4"
    write_mp4(path, driving_frames[:5])
    assert add_audio(path, DRIVING, max_seconds=5 / 25) is True
    assert has_audio(path)
    assert count_frames(path) == 5
    assert video_stream_info(path)["duration"] <= 0.25


def test_add_audio_without_audio_warns(tmp_path):
    silent = tmp_path / "silent.mp4"
    write_mp4(silent, synthetic())
    out = tmp_path / "out.mp4"
    write_mp4(out, synthetic())
    before = out.read_bytes()
    with pytest.warns(UserWarning, match="silent.mp4"):
        assert add_audio(out, silent) is False
    assert out.read_bytes() == before

    gif = tmp_path / "out.gif"
    write_mp4(gif, synthetic())
    with pytest.warns(UserWarning, match="gif"):
        assert add_audio(gif, DRIVING) is False
    folder = tmp_path / "frames"
    write_mp4(str(folder) + "/", synthetic())
    with pytest.warns(UserWarning, match="PNG"):
        assert add_audio(folder, DRIVING) is False
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Bad inputs


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    files = {}
    files["missing"] = d / "missing.mp4"
    files["folder"] = d / "folder.mp4"
    files["folder"].mkdir()
    files["text"] = d / "text.mp4"
    files["text"].write_text("this is not a video\n")
    files["image"] = d / "image.mp4"
    files["image"].write_bytes(pathlib.Path(SOURCE).read_bytes())
    files["empty"] = d / "empty.mp4"
    files["empty"].write_bytes(b"")
    files["audio_only"] = d / "audio_only.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(files["audio_only"]))
    # A video stream whose frames are cut off: headers (moov first) but no decodable data.
    whole = d / "whole.mp4"
    ffmpeg("-i", DRIVING, "-an", "-c", "copy", "-movflags", "+faststart", str(whole))
    data = whole.read_bytes()
    files["no_frames"] = d / "no_frames.mp4"
    files["no_frames"].write_bytes(data[: data.index(b"mdat") + 20])
    return files


@pytest.mark.parametrize(
    "kind", ["missing", "folder", "text", "image", "empty", "audio_only", "no_frames"]
)
def test_reader_bad_input(bad_files, kind):
    path = bad_files[kind]
    with pytest.raises(InputError, match=path.name):
        VideoReader(path)


@pytest.mark.parametrize("kind", ["missing", "folder", "text", "empty"])
def test_read_image_bad_input(bad_files, kind):
    path = bad_files[kind]
    with pytest.raises(InputError, match=path.name):
        read_image(path)


def test_other_bad_inputs(tmp_path, bad_files):
    with pytest.raises(InputError, match="missing.mp4"):
        count_frames(bad_files["missing"])
    with pytest.raises(InputError, match="text.mp4"):
        video_stream_info(bad_files["text"])
    with pytest.raises(InputError, match=r"out\.xyz"):
        VideoWriter(tmp_path / "out.xyz", 25)
    with pytest.raises(InputError, match="noext"):
        VideoWriter(tmp_path / "noext", 25)
    assert os.listdir(tmp_path) == []
    out = tmp_path / "out.mp4"
    write_mp4(out, synthetic())
    with pytest.raises(InputError, match="missing.mp4"):
        add_audio(out, bad_files["missing"])
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_input_error_is_one_line(bad_files):
    for kind in ("missing", "text", "image", "no_frames"):
        with pytest.raises(InputError) as info:
            VideoReader(bad_files[kind])
        assert "\n" not in str(info.value)
