"""Bounded inputs (docs/limits.md): files whose headers declare more than the limits, pipes,
playlists, configs that expand through aliases and flags past their bounds are refused with one
line before anything large is decoded or allocated."""

import os
import struct
import subprocess
import time

import numpy as np
import pytest
import tifffile
from helpers import ROOT, demo, run_script, tiny_flags

from modules.app import animate
from modules.app.images import MAX_PIXELS, check_image, load_image
from modules.app.probe import ffmpeg_exe, video_stream_info
from modules.app.video import MAX_FRAME_PIXELS, VideoReader
from modules.app.video_writer import VideoWriter
from modules.convert.config import MAX_NODES, load_config
from modules.errors import ConfigError, InputError, UsageError

SOURCE = str(demo("tiny-vox") / "source.png")
DRIVING = str(demo("tiny-vox") / "driving.mp4")


def ffmpeg(*args):
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True)


def float_tiff(path, width, height):
    """A float32 RGB TIFF (which Pillow cannot open) declaring width x height pixels: an 8 x 8
    image whose size tags are rewritten, so only its header is right."""
    tifffile.imwrite(path, np.zeros((8, 8, 3), np.float32))
    with tifffile.TiffFile(path) as tiff:
        tags = tiff.pages[0].tags
        spots = [
            (tags[name].valueoffset, tags[name].dtype) for name in ("ImageWidth", "ImageLength")
        ]
    data = bytearray(path.read_bytes())
    for (offset, dtype), value in zip(spots, (width, height)):
        form = "<H" if dtype == 3 else "<I"  # SHORT or LONG
        data[offset : offset + struct.calcsize(form)] = struct.pack(form, value)
    path.write_bytes(bytes(data))
    return str(path)


# Images


def test_float_tiff_over_the_limit_refused_from_its_header(tmp_path):
    path = float_tiff(tmp_path / "huge.tif", 15_000, 15_000)  # 225 Mpx, 2.7 GB as float32 RGB
    assert 15_000**2 > MAX_PIXELS
    start = time.monotonic()
    for read in (check_image, load_image):
        with pytest.raises(InputError, match="too large") as error:
            read(path)
        assert "huge.tif" in str(error.value) and "15000 x 15000" in str(error.value)
    assert time.monotonic() - start < 5


def test_float_tiff_within_the_limit_reads(tmp_path):
    path = float_tiff(tmp_path / "small.tif", 8, 8)
    assert check_image(path) == path
    assert load_image(path).shape == (8, 8, 3)


def test_image_of_unreadable_size_refused(tmp_path):
    path = tmp_path / "image.exr"
    path.write_bytes(b"v/1\x01" + bytes(200))  # an OpenEXR magic, nothing Pillow or tifffile reads
    with pytest.raises(InputError, match="size cannot be read"):
        check_image(str(path))


# Pipes


def fifo(tmp_path, name):
    path = tmp_path / name
    os.mkfifo(path)
    return str(path)


def test_fifo_refused_by_the_image_and_video_checks(tmp_path):
    for read, name in ((check_image, "source.png"), (VideoReader, "driving.mp4")):
        with pytest.raises(InputError, match="not a regular file"):
            read(fifo(tmp_path, name))


@pytest.mark.parametrize("flag", ["--source_image", "--driving_video"])
def test_fifo_as_input_is_one_line_error_not_a_hang(tmp_path, flag):
    path = fifo(tmp_path, "input.mp4")
    result = run_script(
        "run.py",
        *tiny_flags("tiny-vox"),
        *["--source_image", SOURCE, "--driving_video", DRIVING],
        *[flag, path, "--output", str(tmp_path / "out.mp4")],
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == (
        f"error: {'Image' if 'source' in flag else 'Driving video'} '{path}' is not a regular "
        f"file (a pipe, device or socket). Save it to a file and give that path."
    )


# Videos


def test_frames_far_apart_are_capped_at_max_frames(tmp_path):
    path = tmp_path / "gap.mkv"  # 10 frames 1000 s apart: 9001 at its 1 fps
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc=size=64x48:rate=1", "-frames:v", 10),
        *("-vf", "setpts=N*1000/TB", "-c:v", "libx264", path),
    )
    assert path.stat().st_size < 20_000
    with VideoReader(path) as reader:
        assert reader.num_frames > 9000
    args = animate.parser("run.py", "").parse_args(
        ["--source_image", SOURCE, "--driving_video", str(path), "--max_frames", "50"]
        + ["--output", str(tmp_path / "out.mp4")]
    )
    with pytest.warns(UserWarning, match=r"has 9001 frames .* first 50 are animated"):
        request, reader, total = animate.check(args)
    reader.close()
    assert total == 50 and request.frames == 50


def test_max_frames_default_leaves_short_videos_and_frames_alone(tmp_path):
    args = animate.parser("run.py", "").parse_args(
        ["--source_image", SOURCE, "--driving_video", DRIVING, "--output", str(tmp_path / "o.mp4")]
    )
    assert args.max_frames == animate.DEFAULT_MAX_FRAMES
    request, reader, total = animate.check(args)
    reader.close()
    assert total == 8 and request.frames is None


def test_driving_frames_over_the_pixel_limit_refused_from_the_header(tmp_path):
    path = tmp_path / "big.mp4"
    ffmpeg(*("-f", "lavfi", "-i", "color=s=8192x8192", "-frames:v", 1), "-c:v", "mjpeg", path)
    assert 8192 * 8192 > MAX_FRAME_PIXELS
    start = time.monotonic()
    with pytest.raises(InputError, match=r"8192 x 8192 pixels; the limit is 16.8 Mpx"):
        VideoReader(path)
    assert time.monotonic() - start < 5


def test_driving_frames_at_the_pixel_limit_pass(tmp_path):
    path = tmp_path / "4k.mkv"
    ffmpeg(*("-f", "lavfi", "-i", "color=s=4096x4096", "-frames:v", 1), "-c:v", "mjpeg", path)
    with VideoReader(path) as reader:
        assert reader.size == (4096, 4096)


def hls(tmp_path):
    """A playlist naming a real local segment by its absolute path."""
    segment = tmp_path / "elsewhere" / "secret.ts"
    segment.parent.mkdir()
    ffmpeg(*("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-frames:v", 5), segment)
    playlist = tmp_path / "driving.m3u8"
    playlist.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{segment}\n#EXT-X-ENDLIST\n"
    )
    return str(playlist), segment


def test_playlists_and_concat_scripts_refused(tmp_path):
    playlist, segment = hls(tmp_path)
    concat = tmp_path / "list.txt"
    concat.write_text(f"ffconcat version 1.0\nfile {segment}\n")
    for path in (playlist, str(concat)):
        for read in (video_stream_info, VideoReader):
            with pytest.raises(InputError, match="playlists such as .m3u8"):
                read(path)
    renamed = tmp_path / "driving.mp4"  # ffmpeg's hls needs the extension; refused all the same
    renamed.write_bytes(open(playlist, "rb").read())
    with pytest.raises(InputError, match="Cannot open"):
        VideoReader(renamed)


def test_playlist_never_opens_the_files_it_names(tmp_path):
    playlist, segment = hls(tmp_path)
    segment.unlink()
    os.mkfifo(segment)  # ffmpeg opening it would block until the probe's timeout
    start = time.monotonic()
    with pytest.raises(InputError, match="playlists"):
        VideoReader(playlist)
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("extension", [".mp4", ".mkv", ".webm", ".avi", ".mov", ".gif", ".m4v"])
def test_every_written_format_is_allowed(tmp_path, extension):
    path = str(tmp_path / f"clip{extension}")
    with VideoWriter(path, 10) as writer:
        for i in range(3):
            writer.append(np.full((32, 48, 3), 40 * i, np.uint8))
    with VideoReader(path) as reader:
        assert reader.size == (48, 32) and len(list(reader)) >= 3


# Flags


def test_batch_size_over_the_bound_is_a_usage_error(tmp_path):
    args = animate.parser("run.py", "").parse_args(
        ["--source_image", SOURCE, "--driving_video", DRIVING, "--batch_size", "100000"]
    )
    with pytest.raises(UsageError, match=r"--batch_size must be at most 64, got 100000"):
        animate.check(args)
    args.batch_size = animate.MAX_BATCH_SIZE
    args.output = str(tmp_path / "out.mp4")
    animate.check(args)[1].close()


@pytest.mark.parametrize("flag", ["--max_frames", "--batch_size"])
def test_flags_below_one_refused(flag):
    args = animate.parser("run.py", "").parse_args([flag, "0"])
    with pytest.raises(UsageError, match=f"{flag} must be at least 1, got 0"):
        animate.check(args)


# Configs

LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi")
)


def config(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_billion_laughs_refused_in_a_line(tmp_path):
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + LAUGHS
    text += "model_params:\n  common_params: {num_kp: *i, num_channels: 3}\n"
    assert len(text) < 1500  # 9**9 = 387M strings once expanded
    start = time.monotonic()
    with pytest.raises(ConfigError, match=f"expands to over {MAX_NODES} values") as error:
        load_config(config(tmp_path, text))
    assert time.monotonic() - start < 2 and len(str(error.value)) < 300


def test_large_invalid_value_is_shortened_in_the_message(tmp_path):
    values = ", ".join(["123456789"] * 20_000)  # within MAX_NODES, written out
    text = f"model_params:\n  common_params: {{num_kp: [{values}], num_channels: 3}}\n"
    with pytest.raises(ConfigError, match=r"num_kp must be a positive integer, got \[") as error:
        load_config(config(tmp_path, text))
    assert len(str(error.value)) < 300 and "..." in str(error.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: &a [1, *a]\n", "alias inside the value it names"),
        ("[" * 100_000, "nested too deeply|not a readable YAML"),
        ("a: " + "1" * 10_000 + "\n", "not a readable YAML file: Exceeds the limit"),
        ("a: 1\n" + "#" * (1 << 20), "is over 1 MB"),
        ("model_params:\n  common_params: {1: 2, null: 3, a: 4}\n", "unknown field"),
    ],
    ids=["recursive alias", "deep nesting", "huge integer", "over 1 MB", "mixed keys"],
)
def test_hostile_configs_are_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_config(config(tmp_path, text))
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


def test_original_configs_still_load():
    for name in ("vox-256.yaml", "taichi-256.yaml", "mgif-256.yaml"):
        assert load_config(ROOT / "config" / name).num_kp
