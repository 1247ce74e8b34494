"""What the four scripts share: where a model's files are, and turning errors into one line.

Model NAME (e.g. ``vox``) means ``config/NAME-256.yaml``, ``checkpoint/NAME-cpk.pth.tar``
(or ``checkpoint/NAME.pth.tar``, as the published fashion checkpoint is named),
``saved_models/NAME/`` and ``tflite/NAME/`` (``tflite/NAME-float16/``, ``tflite/NAME-dynamic/``
for the quantized ones).
"""

import argparse
import contextlib
import functools
import os
import signal
import sys
import tempfile

from ..errors import FommError, InputError, UsageError
from ..runtime import exact_float32
from . import interrupt

# The folder of config/, checkpoint/, saved_models/, tflite/, ...: the working directory, or
# the checkout when a top-level script (run.py, ...) says so with set_home.
_home = None
# The original's eight configs, inside the installed package (fomm_tf/configs/); a checkout
# has them in its config/ folder instead.
PACKAGED_CONFIG_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs"
)


def set_home(folder):
    """Makes ``folder`` the place of config/, checkpoint/, saved_models/, ... instead of the
    working directory (the top-level scripts give their checkout)."""
    global _home
    _home = os.path.abspath(folder)


def home(*parts):
    """A path in the working directory (or the folder given to ``set_home``)."""
    return os.path.join(_home or os.getcwd(), *parts)


def saved_models_dir():
    return home("saved_models")


def tflite_dir():
    return home("tflite")


def onnx_dir():
    return home("onnx")


def tfjs_dir():
    return home("tfjs")


def web_models_dir():
    return home("web", "models")


def config_dirs():
    """config/ of the working directory (or home), then the package's own configs."""
    return [home("config"), PACKAGED_CONFIG_DIR]


DOWNLOAD_HINT = (
    "the published checkpoints are linked from the original's README "
    "(github.com/AliaksandrSiarohin/first-order-model); put them in checkpoint/"
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors on one line, like every other error of the scripts, and no
    abbreviated flags (a typo such as --relativ must not pass for --relative)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)
        self.hints = {}  # flag another script has -> what to give this one instead

    def error(self, message):
        hints = [hint for flag, hint in self.hints.items() if flag in message.split()]
        more = f"; {hints[0]}" if hints and message.startswith("unrecognized") else ""
        print(f"error: {message}{more} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def config_path(name):
    """``config/NAME-256.yaml`` (or ``config/NAME.yaml`` when NAME already has the size)."""
    for folder in config_dirs():
        for candidate in (f"{name}-256.yaml", f"{name}.yaml"):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                return path
    known = ", ".join(model_names()) or "none"
    raise UsageError(
        f"no config for model '{name}' in config/ (known models: {known}); "
        f"pass --config PATH for another config"
    )


def checkpoint_path(name, required=True):
    """``checkpoint/NAME-cpk.pth.tar``, else ``checkpoint/NAME.pth.tar``."""
    for candidate in (f"{name}-cpk.pth.tar", f"{name}.pth.tar"):
        path = home("checkpoint", candidate)
        if os.path.isfile(path):
            return path
    if required:
        raise UsageError(
            f"no checkpoint for model '{name}': expected checkpoint/{name}-cpk.pth.tar "
            f"or checkpoint/{name}.pth.tar ({DOWNLOAD_HINT}), or pass --checkpoint PATH"
        )
    return None


def check_folder(folder, path):
    """``folder`` exists as a writable folder, or can be created: its nearest existing
    ancestor is a writable folder. InputError naming ``path`` otherwise."""
    probe = os.path.abspath(folder)
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise InputError(
            f"Cannot write '{path}': '{probe}' is not a folder. Choose another output path."
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(
            f"Cannot write '{path}': no permission to write in '{probe}'. "
            f"Choose a writable location."
        )


def model_names():
    """The models that have a config in config/: ``vox`` for ``vox-256.yaml``."""
    names = set()
    for folder in config_dirs():
        for entry in os.listdir(folder) if os.path.isdir(folder) else []:
            if entry.endswith(".yaml"):
                stem = entry[: -len(".yaml")]
                names.add(stem[: -len("-256")] if stem.endswith("-256") else stem)
    return sorted(names)


def main_guard(main):
    """Runs ``main``; bad input becomes one line on stderr and exit code 2; SIGINT (Ctrl-C),
    SIGTERM and SIGHUP exit 130, 143 and 129 (modules/app/interrupt.py); never a traceback."""

    @functools.wraps(main)
    def run(argv=None, *more):
        previous = interrupt.install()
        try:
            result = main(argv, *more)
            interrupt.check()  # a signal whose exception native code swallowed
        except KeyboardInterrupt as error:
            # The handlers stay: a second signal must not break the exit.
            interrupted(getattr(error, "signum", None))
        except FommError as error:
            interrupt.restore(previous)
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except BaseException:
            # A signal's exception can come back as another one: raised where CPython does
            # not expect one (a list TensorFlow builds while tracing), it becomes SystemError.
            if interrupt.received() is not None:
                interrupted(interrupt.received())
            interrupt.restore(previous)
            raise
        interrupt.restore(previous)
        return result

    return run


def interrupted(signum):
    """The one line and exit code (128 + ``signum``) of a run that a signal stopped."""
    what = f"interrupted ({signal.Signals(signum).name})" if signum else "interrupted"
    print(f"{what}; nothing was written in place of existing files", file=sys.stderr)
    sys.exit(128 + (signum or signal.SIGINT))


def say(line):
    """Prints a script's closing line. With stdout closed early (``| head``) the line is
    lost, not the run: the output is already in place."""
    try:
        print(line, flush=True)
    except (BrokenPipeError, ValueError):
        # Later flushes (at exit) would fail again: send what is left nowhere.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def exit_fast(main):
    """Runs a script's ``main`` (main_guard'ed) and ends the process as ``sys.exit`` would,
    but without the interpreter's teardown: once TensorFlow is loaded that teardown takes
    about a second (run.py, full-size vox, 1 frame: 6.9 s -> 6.0 s) and does nothing for us,
    since every file is closed and every output in place when ``main`` returns. A bug (any
    other exception) still ends the normal way, with its traceback."""
    try:
        code = main()
    except SystemExit as exit:
        code = exit.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    if sys.getprofile() or sys.gettrace():  # a profiler or coverage writes its data at exit
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextlib.contextmanager
def quiet():
    """Holds back what TensorFlow's C++ side prints on stderr (start-up notices, converter
    logs) and shows it only if the block fails with a bug (not a FommError). FOMM_VERBOSE=1
    shows everything."""
    if os.environ.get("FOMM_VERBOSE") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except FommError:
            raise  # its one line says what went wrong: the captured log would bury it
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """Imports TensorFlow and starts its runtime without its start-up notices."""
    with quiet():
        import tensorflow as tf

        exact_float32(tf)
        tf.constant(0)
    return tf
