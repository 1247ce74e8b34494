"""Writing files and folders so that a failure never leaves half of one in place.

Every write goes to a temporary path beside the target (``temp_beside``) that is renamed into
place only when complete; an interrupted write leaves the old file or folder as it was. The
exports (``write_file``, ``replacing``), the video writer (modules/app/video.py) and
testlite.py's weight cache (modules/app/weight_cache.py) share it.
"""

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
import uuid

# Temporaries older than this are cleaned whoever made them: no run takes a day without
# touching its output, so one that old was left by a machine that stopped.
FOREIGN_AGE = 24 * 3600
NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
# Room that a temporary name adds to the target's stem: "." + ".tmp-" + a process id of up
# to 10 digits + "-OWNER-HEX" (8 + 8 hex digits and two dashes).
_ADDED = 1 + 5 + 10 + 2 + 8 + 8
_LONG_EXT = 32  # a longer "extension" is part of the name, not a container's suffix


def temp_beside(path, folder=False):
    """Creates an empty file (or folder) beside ``path`` under a fresh name; returns its path.

    The name is hidden, matches ``*.tmp-*`` (.gitignore), holds this process's id and the
    machine it runs on (``owner``), and keeps a file's extension (ffmpeg picks the container
    from it): ``.result.tmp-PID-OWNER-HEX.mp4``. A stem too long for a 255-byte name is cut
    and ends in a hash of the whole stem. Unlike tempfile's private (0600/0700) paths, it gets
    the umask's permissions, which the final file or folder keeps once renamed. Stale
    temporaries of the same target go first.
    """
    parent, stem, ext = _parts(path, folder)
    clean_stale(parent, stem, ext)
    tmp = os.path.join(parent, f".{stem}.tmp-{os.getpid()}-{owner()}-{uuid.uuid4().hex[:8]}{ext}")
    if folder:
        os.mkdir(tmp)
    else:
        open(tmp, "xb").close()
    return tmp


def _parts(path, folder):
    """(parent folder, stem, extension) of the temporaries of ``path``, the stem shortened so
    that every temporary name fits in NAME_MAX bytes."""
    parent, name = os.path.split(os.path.abspath(os.fspath(path)))
    stem, ext = (name, "") if folder else os.path.splitext(name)
    if len(os.fsencode(ext)) > _LONG_EXT:
        stem, ext = name, ""
    room = NAME_MAX - _ADDED - len(os.fsencode(ext))
    encoded = os.fsencode(stem)
    if len(encoded) > room:
        digest = hashlib.sha256(encoded).hexdigest()[:8]
        # Cut on a character boundary: the name stays valid in the file system's encoding.
        kept = encoded[: room - 9].decode(sys.getfilesystemencoding(), "ignore")
        stem = f"{kept}~{digest}"
    return parent, stem, ext


@functools.cache
def owner():
    """8 hex digits that name this machine, this boot of it and this process-id namespace
    (a container has its own). A process id only means something within all three: the same
    number elsewhere (another container, another host sharing the folder) is another
    process."""
    parts = [socket.gethostname()]
    for source in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            if source.endswith("boot_id"):
                with open(source) as f:
                    parts.append(f.read().strip())
            else:
                parts.append(os.readlink(source))
        except OSError:
            parts.append("")  # not Linux: the host name alone
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


def clean_stale(parent, stem, ext=""):
    """Removes the temporaries that a process killed outright (SIGKILL, power loss) left for
    the target ``stem + ext`` in ``parent``. One that this machine (same boot, same process
    namespace, see ``owner``) made goes once its process no longer runs; one made elsewhere
    goes only when nothing in it changed for FOREIGN_AGE, since its process cannot be asked
    about. A live process's temporary (a concurrent run) is never touched; a reused process id
    only keeps a stale one a while longer. Names without an owner (written by earlier
    versions) are judged by their process id, as those versions did."""
    pattern = re.compile(
        rf"\.{{1,2}}{re.escape(stem)}\.tmp-(\d+)-(?:([0-9a-f]{{8}})-)?[0-9a-f]{{8}}.*"
        rf"{re.escape(ext)}"
    )
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if not match:
            continue
        path = os.path.join(parent, name)
        made_here = match.group(2) in (None, owner())
        if made_here and not running(int(match.group(1))):
            discard(path)
        elif not made_here and _age(path) > FOREIGN_AGE:
            discard(path)


def _age(path):
    """Seconds since anything in ``path`` (a file, or a folder and what it holds) changed."""
    try:
        latest = os.lstat(path).st_mtime
        if os.path.isdir(path) and not os.path.islink(path):
            for folder, _, files in os.walk(path):
                for entry in [folder, *(os.path.join(folder, f) for f in files)]:
                    with contextlib.suppress(OSError):
                        latest = max(latest, os.lstat(entry).st_mtime)
    except OSError:
        return 0.0
    return time.time() - latest


def running(pid):
    """Whether process ``pid`` runs on this machine (in this process namespace)."""
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
