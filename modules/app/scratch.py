"""The folders where a dataset job encodes its visualization video before reading it back
(ffmpeg writes to a path): ``TMP/fomm-visualization-PID-XXXXXXXX``.

A process killed outright (SIGKILL, or a Ray worker that its cluster shuts down mid-job)
cannot remove its folder; the name holds the process's id, so the next job on the machine
removes the folders of processes that no longer run, and a Ray run removes its local workers'
folders once they have ended.
"""

import contextlib
import glob
import os
import shutil
import tempfile
import time

from ..atomic import running

PREFIX = "fomm-visualization-"


@contextlib.contextmanager
def scratch_folder():
    """A fresh folder, removed on the way out; stale folders of ended processes go first."""
    clean_stale()
    folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def clean_stale(pids=None, seconds=0.0):
    """Removes the folders of ended processes: every such folder, or those of ``pids`` (which
    get up to ``seconds`` to end)."""
    deadline = time.monotonic() + seconds
    for path in glob.glob(os.path.join(tempfile.gettempdir(), PREFIX + "*")):
        pid = _pid_of(path)
        if pid is None or (pids is not None and pid not in pids):
            continue
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not running(pid):
            shutil.rmtree(path, ignore_errors=True)


def _pid_of(path):
    head = os.path.basename(path)[len(PREFIX) :].split("-")[0]
    return int(head) if head.isdigit() else None
