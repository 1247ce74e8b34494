"""Writing files and folders so that a failure never leaves half of one in place.

Every write goes to a temporary path beside the target that is renamed into place only when
complete; an interrupted write leaves the old file or folder as it was.
"""

import contextlib
import os
import shutil
import tempfile


def write_file(path, data):
    """Writes bytes or text to ``path`` through a temporary file beside it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.tmp-")
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        _usual_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def replacing(directory):
    """Yields a temporary folder beside ``directory`` that replaces it on success; on any
    failure or interruption the temporary folder goes and ``directory`` stays as it was."""
    directory = os.path.abspath(directory)
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(directory)}.tmp-")
    try:
        yield tmp
        _usual_permissions(tmp)
        old = None
        if os.path.exists(directory):
            old = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(directory)}.old-")
            os.rename(directory, os.path.join(old, "x"))
        os.rename(tmp, directory)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _usual_permissions(path):
    """tempfile makes private (0600/0700) paths; the final file or folder gets the umask's."""
    umask = os.umask(0)
    os.umask(umask)
    for root, dirs, files in os.walk(path) if os.path.isdir(path) else [(None, [], [path])]:
        for entry in ([root] if root else []) + [os.path.join(root, d) for d in dirs]:
            os.chmod(entry, 0o777 & ~umask)
        for entry in files:
            os.chmod(os.path.join(root, entry) if root else entry, 0o666 & ~umask)
