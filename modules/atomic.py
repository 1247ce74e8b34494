"""Writing files and folders so that a failure never leaves half of one in place.

Every write goes to a temporary path beside the target (``temp_beside``) that is renamed into
place only when complete; an interrupted write leaves the old file or folder as it was. The
exports (``write_file``, ``replacing``), the video writer (modules/app/video.py) and
testlite.py's weight cache (modules/app/weight_cache.py) share it.
"""

import contextlib
import json
import os
import re
import shutil
import uuid


def temp_beside(path, folder=False):
    """Creates an empty file (or folder) beside ``path`` under a fresh name; returns its path.

    The name is hidden, matches ``*.tmp-*`` (.gitignore), holds this process's id and keeps a
    file's extension (ffmpeg picks the container from it): ``.result.tmp-PID-HEX.mp4``.
    Unlike tempfile's private (0600/0700) paths, it gets the umask's permissions, which the
    final file or folder keeps once renamed. Stale temporaries of the same target go first.
    """
    parent, name = os.path.split(os.path.abspath(path))
    stem, ext = (name, "") if folder else os.path.splitext(name)
    clean_stale(parent, stem, ext)
    tmp = os.path.join(parent, f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{ext}")
    if folder:
        os.mkdir(tmp)
    else:
        open(tmp, "xb").close()
    return tmp


def clean_stale(parent, stem, ext=""):
    """Removes the temporaries that a process killed outright (SIGKILL, power loss) left for
    the target ``stem + ext`` in ``parent``: those whose process no longer runs on this
    machine. A live process's temporary (a concurrent run) is never touched; a reused process
    id only keeps a stale one a while longer."""
    pattern = re.compile(rf"\.{{1,2}}{re.escape(stem)}\.tmp-(\d+)-[0-9a-f]{{8}}.*{re.escape(ext)}")
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _running(int(match.group(1))):
            discard(os.path.join(parent, name))


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a process id we can ask about
    return True


def discard(tmp):
    """Removes a temporary file or folder if it is still there."""
    if os.path.isdir(tmp) and not os.path.islink(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def write_file(path, data):
    """Writes bytes or text to ``path`` through a temporary file beside it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_beside(path)
    try:
        with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def read_record(path, limit=4096):
    """The JSON value of a small record file (such as ``write_file`` writes), or None when it
    is missing, not a regular file (a pipe there would block the read), unreadable, or not
    JSON within its first ``limit`` bytes."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            return json.loads(f.read(limit))
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def replacing(directory):
    """Yields a temporary folder beside ``directory`` that replaces it on success; on any
    failure or interruption the temporary folder goes and ``directory`` stays as it was."""
    directory = os.path.abspath(directory)
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    tmp = temp_beside(directory, folder=True)
    try:
        yield tmp
        old = None
        if os.path.exists(directory):
            # A folder cannot be renamed over a non-empty one: move the old one aside first.
            old = temp_beside(directory, folder=True)
            os.rename(directory, os.path.join(old, "x"))
        os.rename(tmp, directory)
        if old:
            discard(old)
    except BaseException:
        discard(tmp)
        raise
