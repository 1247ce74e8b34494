"""Keys while a session runs in a terminal: r makes the next frame the reference of relative
motion (avatarify's X), q stops. Ctrl-C still works: the terminal keeps its signals."""

import contextlib
import os
import select
import sys
import threading


@contextlib.contextmanager
def keys(session):
    """Reads single keys from stdin while the block runs, when stdin is a terminal; the
    terminal's mode is restored on the way out, however the block ends."""
    if not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    done = threading.Event()

    def read():
        while not done.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            key = os.read(fd, 1)
            if key in (b"r", b"R"):
                refused = session.request_reset()
                if refused:
                    print(f"live: {refused}", file=sys.stderr, flush=True)
            elif key in (b"q", b"Q"):
                session.stop.set()

    tty.setcbreak(fd)
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
