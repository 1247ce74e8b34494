"""Real signals to real script processes: SIGINT (also twice), SIGTERM and SIGHUP end run.py
and build.py with 130 / 143 / 129, no traceback, the old output intact and no temporary
file; a SIGKILL's leftover temporary is cleaned by the next run for the same target."""

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import long_video

from modules.atomic import temp_beside

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
TINY = os.path.join(FIXTURES, "tiny-vox")
MODEL = [
    "--model",
    "tiny-vox",
    "--config",
    os.path.join(TINY, "config.yaml"),
    "--checkpoint",
    os.path.join(TINY, "tiny-vox-cpk.pth.tar"),
]


def start(script, *args):
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # signals reach only this process, as `kill PID` sends them
    )


def wait_for_temporary(folder, process, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline and process.poll() is None:
        if any(".tmp-" in name for name in os.listdir(folder)):
            return
        time.sleep(0.1)
    raise AssertionError(f"no temporary file appeared; {process.communicate()}")


@pytest.fixture(scope="module")
def driving(tmp_path_factory):
    return long_video(tmp_path_factory.mktemp("long") / "long.mp4")


def assert_clean_end(process, code, folder, names):
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted ("), err
    assert sorted(os.listdir(folder)) == names


@pytest.mark.slow
@pytest.mark.parametrize(
    "signals, code",
    [
        ([signal.SIGTERM], 143),
        ([signal.SIGHUP], 129),
        ([signal.SIGINT, signal.SIGINT], 130),  # double Ctrl-C, 20 ms apart
    ],
    ids=["sigterm", "sighup", "double-sigint"],
)
def test_run_py_ends_cleanly_on_signals(tmp_path, driving, signals, code):
    out = tmp_path / "result.mp4"
    out.write_bytes(b"the previous result")
    process = start("run.py", *MODEL, "--driving_video", driving, "--output", str(out))
    wait_for_temporary(tmp_path, process)
    time.sleep(1.5)  # into the animation
    for signum in signals:
        process.send_signal(signum)
        time.sleep(0.02)
    assert_clean_end(process, code, tmp_path, ["result.mp4"])
    assert out.read_bytes() == b"the previous result"


@pytest.mark.slow
def test_build_py_stops_on_ctrl_c_during_tflite_conversion(tmp_path):
    """The TF Lite converter drops the KeyboardInterrupt its signal handler raised; the build
    must stop anyway, without 'done', and leave the previous model in place."""
    tflite = tmp_path / "tflite"
    (tflite / "tiny-vox").mkdir(parents=True)
    old = tflite / "tiny-vox" / "generator.tflite"
    old.write_bytes(b"the previous model")
    process = start(
        "build.py",
        *MODEL,
        "--module",
        "generator",
        "--saved_models",
        str(tmp_path / "saved_models"),
        "--tflite",
        str(tflite),
    )
    seen = ""
    while "TF Lite" not in seen:  # the step's line is printed when the conversion starts
        char = process.stdout.read(1)
        assert char, process.communicate()
        seen += char
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, out + err
    assert "done" not in out and "Traceback" not in err
    assert os.listdir(tflite / "tiny-vox") == ["generator.tflite"]
    assert old.read_bytes() == b"the previous model"
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


@pytest.mark.slow
def test_sigkill_leftover_is_cleaned_by_the_next_run(tmp_path, driving):
    out = tmp_path / "result.mp4"
    process = start("run.py", *MODEL, "--driving_video", driving, "--output", str(out))
    wait_for_temporary(tmp_path, process)
    process.kill()
    process.communicate()
    left = [n for n in os.listdir(tmp_path) if ".tmp-" in n]
    assert left, "SIGKILL should leave the temporary file behind"
    again = start("run.py", *MODEL, "--frames", "2", "--output", str(out))
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert sorted(os.listdir(tmp_path)) == ["result.mp4"]


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "result.mp4"
    stale = [
        tmp_path / f".result.tmp-{dead_pid()}-0123abcd.mp4",  # a killed video writer
        tmp_path / f"..result.tmp-{dead_pid()}-0123abcd.tmp-{dead_pid()}-89abcdef.mp4",  # audio
    ]
    live = tmp_path / f".result.tmp-{os.getppid()}-0123abcd.mp4"  # a concurrent run's
    other = tmp_path / f".other.tmp-{dead_pid()}-0123abcd.mp4"  # another target's
    for path in [*stale, live, other]:
        path.write_bytes(b"x")
    frames = tmp_path / f".frames.tmp-{dead_pid()}-0123abcd"  # a PNG-frame folder's
    frames.mkdir()
    new = temp_beside(target)
    expected = {live.name, other.name, os.path.basename(new), frames.name}
    assert set(os.listdir(tmp_path)) == expected
    new_frames = temp_beside(tmp_path / "frames", folder=True)
    expected = (expected - {frames.name}) | {os.path.basename(new_frames)}
    assert set(os.listdir(tmp_path)) == expected


def test_an_exception_in_place_of_the_signals_is_still_an_interruption(capsys):
    """Raised where CPython does not expect an exception (a list that TensorFlow builds while
    tracing, under build.py's TF Lite conversion), the signal's KeyboardInterrupt comes back
    as a SystemError: the run still ends as interrupted, with no traceback."""
    from modules.app import cli

    @cli.main_guard
    def main(argv=None):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises here
        except KeyboardInterrupt:
            raise SystemError("bad argument to internal function") from None
        raise AssertionError("no signal arrived")

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with pytest.raises(SystemExit) as exit:
            main()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert exit.value.code == 130
    assert capsys.readouterr().err == (
        "interrupted (SIGINT); nothing was written in place of existing files\n"
    )
