"""modules/app/frame_process.py: the driving frames that testlite.py's pipeline has a child
process decode, crop and resize (LiteRT holds the GIL while its models run), on real video
files and real processes: the same frames as the reading thread's, its errors, and no child
left behind, whether the parent stops reading, dies or gets Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from helpers import ROOT, demo, long_video, model_args

from modules.app import frame_process
from modules.app.framing import Framing
from modules.app.pipeline import Animation, Settings
from modules.app.video import VideoReader
from modules.errors import InputError

DRIVING = str(demo("tiny-vox") / "driving.mp4")  # 8 frames of 320x240
EXAMPLE = os.path.join(ROOT, "example", "driving.mp4")  # 100 frames of 256x256

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self"), reason="finds the child processes in Linux's /proc"
)


def processes():
    """{pid: parent pid} of the live (not zombie) processes."""
    found = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat") as stat:
                state, parent = stat.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z":
            found[int(name)] = int(parent)
    return found


def children(pid):
    """The frame processes that ``pid`` started."""
    table = processes()
    return [child for child in table if table[child] == pid and "frame_process" in cmdline(child)]


def alive(pid):
    return pid in processes()


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().decode(errors="replace")
    except OSError:
        return ""


def thread_batches(path, start, stop, box, frame_shape, batch_size):
    """What the reading thread hands over: ``Animation.batches`` (which reads only the models'
    frame shape, and the settings)."""
    models = types.SimpleNamespace(frame_shape=frame_shape)
    settings = Settings(batch_size=batch_size, framing=Framing(driving_box=box) if box else None)
    with VideoReader(path) as reader:
        return list(Animation(models, settings).batches(reader, start, stop))


@pytest.mark.parametrize(
    "start, stop, box, frame_shape, batch_size",
    [
        (0, None, None, (256, 256), 3),  # the last batch short
        (0, None, (40, 10, 200, 180), (64, 96), 4),  # cropped, non-square
        (3, 4, None, (256, 256), 4),  # --best_frame 3's one frame
        (2, 7, None, (200, 150), 1),  # the ring wraps: more batches than slots
    ],
)
def test_the_reading_threads_frames_bit_for_bit(start, stop, box, frame_shape, batch_size):
    with frame_process.FrameProcess(DRIVING, start, stop, box, frame_shape, batch_size) as made:
        got = list(made)
    want = thread_batches(DRIVING, start, stop, box, frame_shape, batch_size)
    assert [b.shape for b in got] == [b.shape for b in want]
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, w)
    assert children(os.getpid()) == []


@pytest.mark.parametrize("damage", ["zeroed", "truncated"])
def test_a_damaged_video_gives_the_reading_threads_frames(tmp_path, damage):
    """Bytes zeroed in the middle (imageio repeats frames), or the file cut short (the
    stream ends at a truncated frame, as demo.py's loop stops)."""
    data = bytearray(open(EXAMPLE, "rb").read())
    middle = len(data) // 2
    if damage == "zeroed":
        data[middle - 10240 : middle + 10240] = bytes(20480)
    else:
        del data[middle:]
    path = tmp_path / f"{damage}.mp4"
    path.write_bytes(bytes(data))
    with frame_process.FrameProcess(str(path), 0, None, None, (96, 96), 8) as made:
        got = list(made)
    want = thread_batches(str(path), 0, None, None, (96, 96), 8)
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_the_childs_input_error_is_raised_here(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(InputError, match="notes.mp4"):
        with frame_process.FrameProcess(str(text), 0, None, None, (256, 256), 4) as made:
            list(made)
    assert children(os.getpid()) == []


def test_closing_before_the_end_ends_the_child():
    made = frame_process.FrameProcess(DRIVING, 0, None, None, (256, 256), 1)
    (child,) = children(os.getpid())  # started before the first batch is asked for
    next(iter(made))
    # A terminal's Ctrl-C and hang-up reach the foreground process group, not the child's.
    assert os.getpgid(child) != os.getpgrp() and os.getsid(child) != os.getsid(0)
    made.close()
    assert not alive(child) and children(os.getpid()) == []


@pytest.fixture(scope="module")
def long_driving(tmp_path_factory):
    """600 frames of 320x240: many more than the ring holds."""
    return long_video(tmp_path_factory.mktemp("long") / "long.mp4")


def test_the_child_ends_when_its_parent_dies(long_driving):
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import os, sys; sys.path.insert(0, {str(ROOT)!r}); from modules.app import "
            "frame_process; made = frame_process.FrameProcess(sys.argv[1], 0, None, None, "
            "(256, 256), 1); batches = iter(made); next(batches); print(flush=True); "
            "sys.stdin.readline(); os._exit(0)",
            long_driving,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    parent.stdout.readline()  # it took a batch
    (child,) = children(parent.pid)
    time.sleep(2)  # the child fills the ring and waits for a slot
    parent.stdin.close()  # os._exit: no cleanup
    parent.wait(timeout=60)
    deadline = time.time() + 30
    while alive(child) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(child)


@pytest.mark.slow
@pytest.mark.parametrize("wait", [0.0, 1.5], ids=["at-the-childs-start", "mid-animation"])
def test_ctrl_c_ends_testlite_and_its_frame_process(tmp_path, built, long_driving, wait):
    """A terminal's Ctrl-C reaches the whole foreground process group: testlite.py exits 130
    with its one line, the child prints no traceback (in the group, a signal in its imports
    would give one), and no process of the run is left: the child, and the ffmpeg processes
    that read the driving video (the script's and the child's) and write the output."""
    out = tmp_path / "out.mp4"
    process = subprocess.Popen(
        [
            sys.executable,
            os.path.join(ROOT, "testlite.py"),
            *model_args("testlite.py", "tiny-vox", built),
            "--driving_video",
            long_driving,
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not children(process.pid):
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.01)
    time.sleep(wait)
    for _ in range(6):  # Ctrl-C pressed again and again, through the child's start
        time.sleep(0.03)
        os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted (SIGINT)"), err
    assert not out.exists() and sorted(os.listdir(tmp_path)) == []

    def left():  # the run's processes name the driving video or a file beside the output
        commands = map(cmdline, processes())
        return [c for c in commands if long_driving in c or str(tmp_path) in c]

    deadline = time.time() + 30
    while left() and time.time() < deadline:
        time.sleep(0.1)
    assert left() == []
