"""Motion templates (modules/app/motion.py): --save_motion writes the driving keypoints, and
--driving_motion replays them with the frames of the video run, bit for bit, in run.py,
test.py, testlite.py and Animator; every bad or hostile template is one line, exit 2, and
nothing written."""

import io
import os
import subprocess
import sys
import zipfile

import imageio.v2 as imageio
import numpy as np
import pytest
from helpers import (
    ROOT,
    demo,
    main_of,
    model_args,
    read_frames,
    run_in_process,
    tiny_model,
)

from modules import Animator
from modules.app import motion
from modules.app.probe import has_audio, video_stream_info

SCRIPTS = ("run.py", "test.py", "testlite.py")
MOTION_FLAGS = ["--relative", "--adapt_scale", "--batch_size", "3"]
SOURCE = str(demo("tiny-vox") / "source.png")
DRIVING = str(demo("tiny-vox") / "driving.mp4")


def animate(script, built, *flags, driving=("--driving_video", DRIVING)):
    run_in_process(
        script,
        [*model_args(script, "tiny-vox", built), "--source_image", SOURCE, *driving, *flags],
    )


def save_and_replay(tmp_path, script, built, *flags):
    """(frames from the video, frames from its template, the template's path)."""
    template = tmp_path / "motion.npz"
    animate(script, built, "--output", f"{tmp_path}/video/", "--save_motion", str(template), *flags)
    replay = ("--driving_motion", str(template))
    animate(script, built, "--output", f"{tmp_path}/replay/", *flags, driving=replay)
    return read_frames(tmp_path / "video"), read_frames(tmp_path / "replay"), template


def test_run_py_replays_its_template_bit_for_bit(tmp_path):
    video, replay, template = save_and_replay(tmp_path, "run.py", None, *MOTION_FLAGS)
    assert video.shape == (8, 256, 256, 3)
    assert np.array_equal(video, replay)
    with np.load(template, allow_pickle=False) as data:
        assert int(data["version"]) == motion.VERSION
        assert float(data["fps"]) == 25.0
        assert tuple(data["frame_shape"]) == (256, 256)
        assert int(data["num_kp"]) == 10 and bool(data["has_jacobian"])
        assert data["kp_driving_value"].shape == (8, 10, 2)
        assert data["kp_driving_jacobian"].shape == (8, 10, 2, 2)
        assert np.array_equal(data["kp_initial_value"], data["kp_driving_value"][:1])
        assert "audio" not in data.files  # only with --audio
    # --frames applies to a template: the first frames of the same animation
    first = ("--driving_motion", str(template))
    animate(
        "run.py",
        None,
        "--output",
        f"{tmp_path}/first/",
        "--frames",
        "5",
        *MOTION_FLAGS,
        driving=first,
    )
    assert np.array_equal(read_frames(tmp_path / "first"), video[:5])


@pytest.mark.slow
def test_best_frame_is_the_templates_initial_frame(tmp_path):
    flags = [*MOTION_FLAGS, "--best_frame", "3"]
    template = tmp_path / "motion.npz"
    animate(
        "run.py", None, "--output", f"{tmp_path}/video/", "--save_motion", str(template), *flags
    )
    with np.load(template) as data:
        assert np.array_equal(data["kp_initial_value"], data["kp_driving_value"][3:4])
    replay = ("--driving_motion", str(template))
    animate("run.py", None, "--output", f"{tmp_path}/replay/", *MOTION_FLAGS, driving=replay)
    assert np.array_equal(read_frames(tmp_path / "video"), read_frames(tmp_path / "replay"))


@pytest.mark.slow
@pytest.mark.parametrize("script", ["test.py", "testlite.py"])
def test_exports_replay_their_templates_bit_for_bit(tmp_path, built, script):
    video, replay, _ = save_and_replay(tmp_path, script, built, *MOTION_FLAGS)
    assert video.shape == (8, 256, 256, 3)
    assert np.array_equal(video, replay)


def test_audio_travels_in_the_template(tmp_path):
    template = tmp_path / "motion.npz"
    animate(
        "run.py",
        None,
        "--output",
        str(tmp_path / "video.mp4"),
        "--audio",
        "--save_motion",
        str(template),
    )
    with np.load(template) as data:
        assert data["audio"].dtype == np.uint8
        assert data["audio"][:4].tobytes() == motion.MATROSKA_MAGIC
    replay = ("--driving_motion", str(template))
    out = tmp_path / "replay.mp4"
    animate("run.py", None, "--output", str(out), "--audio", driving=replay)
    info = video_stream_info(out)
    assert info["audio"] is not None and info["audio"]["codec"] == "aac"
    # without --audio, none
    animate("run.py", None, "--output", str(tmp_path / "mute.mp4"), driving=replay)
    assert not has_audio(tmp_path / "mute.mp4")


def test_template_without_audio_warns_and_animates(tmp_path):
    template = tmp_path / "motion.npz"
    animate("run.py", None, "--output", f"{tmp_path}/video/", "--save_motion", str(template))
    out = tmp_path / "replay.mp4"
    with pytest.warns(UserWarning, match="has no audio track"):
        replay = ("--driving_motion", str(template))
        animate("run.py", None, "--output", str(out), "--audio", driving=replay)
    assert out.exists() and not has_audio(out)


def test_animator_takes_templates_and_saves_them(tmp_path):
    animator = Animator(tiny_model("tiny-vox"), batch_size=3)
    from_video = np.stack(animator.animate(SOURCE, DRIVING, relative=True, adapt_scale=True))
    path = tmp_path / "motion.npz"
    assert animator.save_motion(DRIVING, path, audio=True) == 8
    loaded = Animator.load_motion(path)
    assert len(loaded) == 8 and loaded.audio is not None and loaded.fps == 25.0
    for driving in (path, str(path), loaded):
        frames = np.stack(animator.animate(SOURCE, driving, relative=True, adapt_scale=True))
        assert np.array_equal(frames, from_video)
    # frames given as arrays: the same keypoints as from their video
    arrays = tmp_path / "arrays.npz"
    video_frames = imageio.mimread(DRIVING)
    animator.save_motion(video_frames, arrays)
    with np.load(path) as a, np.load(arrays) as b:
        assert np.array_equal(a["kp_driving_value"], b["kp_driving_value"])
    with pytest.raises(ValueError, match="do not apply to a motion template"):
        animator.animate(SOURCE, loaded, best_frame=2)


def test_animator_template_matches_the_scripts(tmp_path):
    template = tmp_path / "motion.npz"
    animate(
        "run.py",
        None,
        "--output",
        f"{tmp_path}/video/",
        "--save_motion",
        str(template),
        *MOTION_FLAGS,
    )
    animator = Animator(tiny_model("tiny-vox"), batch_size=3)
    frames = np.stack(animator.animate(SOURCE, template, relative=True, adapt_scale=True))
    assert np.array_equal(frames, read_frames(tmp_path / "video"))


# Bad and hostile templates


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A good template of the tiny vox model, as ``{key: array}``."""
    path = tmp_path_factory.mktemp("good") / "motion.npz"
    Animator(tiny_model("tiny-vox")).save_motion(DRIVING, path, audio=True)
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def write_npz(path, arrays, **extra):
    arrays = {key: value for key, value in {**arrays, **extra}.items() if value is not None}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def bomb(path, good):
    """A template whose kp_driving_value header declares 10^9 frames and holds 8."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in good.items():
            buffer = io.BytesIO()
            if key == "kp_driving_value":
                header = {"descr": "<f4", "fortran_order": False, "shape": (10**9, 10, 2)}
                np.lib.format.write_array_header_1_0(buffer, header)
                buffer.write(value.tobytes())
            else:
                np.lib.format.write_array(buffer, value)
            archive.writestr(f"{key}.npy", buffer.getvalue())
    return path


def hostile(name, tmp, good):
    """The path of the bad template ``name``, and the extra flags it is given with."""
    path = tmp / f"{name}.npz"
    if name == "not a zip":
        path.write_bytes(b"hello, I am not a template")
    elif name == "truncated":
        whole = write_npz(tmp / "whole.npz", good).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif name == "pickled object":
        write_npz(path, good, kp_driving_value=np.array([{"x": 1}] * 8, dtype=object))
    elif name == "missing key":
        write_npz(path, good, kp_driving_jacobian=None)
    elif name == "unknown key":
        write_npz(path, good, extra=np.zeros(3))
    elif name == "not an array member":
        write_npz(path, good)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("run.sh", "rm -rf /")
    elif name == "nan":
        value = good["kp_driving_value"].copy()
        value[3, 2, 0] = np.nan
        write_npz(path, good, kp_driving_value=value)
    elif name == "wrong shape":
        write_npz(path, good, kp_driving_jacobian=good["kp_driving_jacobian"][:5])
    elif name == "wrong dtype":
        write_npz(path, good, kp_driving_value=good["kp_driving_value"].astype(np.float64))
    elif name == "other version":
        write_npz(path, good, version=np.int64(2))
    elif name == "nan fps":
        write_npz(path, good, fps=np.float64("nan"))
    elif name == "declares more than it holds":
        bomb(path, good)
    elif name == "too large":
        with open(path, "wb") as f:
            f.truncate(motion.MAX_BYTES + 1)  # sparse: no disk used
    elif name == "too many frames":
        write_npz(path, good)
        return path, ["--max_frames", "4"]
    elif name == "audio not matroska":
        write_npz(path, good, audio=np.frombuffer(b"#EXTM3U\nfile:///etc/passwd\n", np.uint8))
        return path, ["--audio"]
    elif name == "audio matroska in name only":
        junk = np.frombuffer(motion.MATROSKA_MAGIC + b"\x00" * 64, np.uint8)
        write_npz(path, good, audio=junk)
        return path, ["--audio"]
    elif name == "other keypoint count":
        five = {key: good[key][:, :5] for key in good if key.startswith("kp_")}
        write_npz(path, good, num_kp=np.int64(5), **five)
    elif name == "other frame shape":
        write_npz(path, good, frame_shape=np.array([128, 128]))
    elif name == "no jacobians":
        write_npz(
            path,
            good,
            has_jacobian=np.bool_(False),
            kp_driving_jacobian=None,
            kp_initial_jacobian=None,
        )
    return path, []


HOSTILE = {
    "not a zip": "not a zip file",
    "truncated": "cannot read motion template",
    "pickled object": "pickled Python objects",
    "missing key": "has no kp_driving_jacobian",
    "unknown key": "unknown keys extra",
    "not an array member": "holds 'run.sh', not an array",
    "nan": "NaN or infinite values in kp_driving_value",
    "wrong shape": "kp_driving_jacobian of float32 (5, 10, 2, 2)",
    "wrong dtype": "kp_driving_value of float64",
    "other version": "is version 2",
    "nan fps": "frame rate of nan",
    "declares more than it holds": "is truncated (kp_driving_value.npy)",
    "too large": "the limit is",
    "too many frames": "has 8 frames, over the limit of 4",
    "audio not matroska": "holds audio that is not a Matroska audio track",
    "audio matroska in name only": "is not a Matroska audio track",
    "other keypoint count": "5 keypoints with jacobians; these models take 256x256 frames and 10",
    "other frame shape": "made for 128x128 frames",
    "no jacobians": "without jacobians",
}


def fails(capsys, args):
    """(exit code, stderr lines) of run.py ``args`` in this process."""
    try:
        code = main_of("run.py")(args)
    except SystemExit as exit:
        code = exit.code
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("name", HOSTILE)
def test_bad_template_is_one_line_and_nothing_written(tmp_path, capsys, good, name):
    path, flags = hostile(name, tmp_path, good)
    before = sorted(os.listdir(tmp_path))
    out, saved = tmp_path / "out.mp4", tmp_path / "saved.npz"
    args = [
        *model_args("run.py", "tiny-vox", None),
        "--source_image",
        SOURCE,
        "--driving_motion",
        str(path),
        "--output",
        str(out),
        "--save_motion",
        str(saved),
        *flags,
    ]
    code, lines = fails(capsys, args)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert HOSTILE[name] in lines[0] and str(path) in lines[0], lines[0]
    assert sorted(os.listdir(tmp_path)) == before  # no output, no template, no temporary


FLAG_ERRORS = {
    "with a driving video": (["--driving_video", DRIVING], "replaces --driving_video"),
    "with --best_frame": (["--best_frame", "2"], "--best_frame does not apply"),
    "with --find_best_frame": (["--find_best_frame"], "--find_best_frame does not apply"),
    "with --side_by_side": (["--side_by_side"], "--side_by_side does not apply"),
    "with --driving_box": (["--driving_box", "0,0,64,64"], "--driving_box does not apply"),
}


@pytest.mark.parametrize("name", FLAG_ERRORS)
def test_flags_that_do_not_apply_to_templates(tmp_path, capsys, good, name):
    flags, message = FLAG_ERRORS[name]
    template = write_npz(tmp_path / "motion.npz", good)
    args = [
        *model_args("run.py", "tiny-vox", None),
        "--source_image",
        SOURCE,
        "--driving_motion",
        str(template),
        "--output",
        str(tmp_path / "out.mp4"),
        *flags,
    ]
    code, lines = fails(capsys, args)
    assert code == 2 and len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--save_motion", "{tmp}/motion.pkl"], "a motion template is an .npz file"),
        (["--save_motion", "{tmp}/out.mp4"], "a motion template is an .npz file"),
        (["--save_motion", "{tmp}/file/motion.npz"], "is not a folder"),
        (["--mode", "animate", "--save_motion", "{tmp}/m.npz"], "does not apply to --mode"),
    ],
)
def test_bad_save_motion_paths(tmp_path, capsys, flags, message):
    (tmp_path / "file").write_text("a file, not a folder")
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    args = [
        *model_args("run.py", "tiny-vox", None),
        "--source_image",
        SOURCE,
        "--output",
        str(tmp_path / "out.mp4"),
        *flags,
    ]
    code, lines = fails(capsys, args)
    assert code == 2 and len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "out.mp4").exists()


def test_hostile_template_in_a_real_process(tmp_path, good):
    """The pickle case once end to end: a child process, one line, exit 2, no traceback."""
    path, _ = hostile("pickled object", tmp_path, good)
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "run.py"),
            *model_args("run.py", "tiny-vox", None),
            "--driving_motion",
            str(path),
            "--output",
            str(tmp_path / "out.mp4"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "pickled" in result.stderr
    assert not (tmp_path / "out.mp4").exists()
