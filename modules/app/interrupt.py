"""Ending the scripts cleanly on SIGINT (Ctrl-C), SIGTERM (kill, timeout, docker stop) and
SIGHUP (closed terminal).

The first of these signals raises ``Interrupted`` (a KeyboardInterrupt) in the main thread;
every ``with``/``finally`` on the way out then removes its temporary files, and the scripts'
guard exits with 128 + the signal's number (130, 143, 129) without a traceback. Later signals
are only remembered: a second Ctrl-C would otherwise land in that cleanup and print a
traceback, or leave a temporary file behind. The cleanup is short (at most seconds).

Native code (TensorFlow's TF Lite converter) may run the handler and then discard the
exception it raised; ``check()``, called between steps, raises it again so the run still stops.
"""

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_received = None


class Interrupted(KeyboardInterrupt):
    """A termination signal arrived; ``signum`` says which."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _handler(signum, frame):
    global _received
    if _received is not None:
        return  # already on the way out
    _received = signum
    raise Interrupted(signum)


def install():
    """Handles the three signals in this (main) thread; a signal the parent set to be ignored
    (``nohup``, background jobs) stays ignored. Returns the previous handlers for
    ``restore`` (when a script's main runs inside another program, such as the tests)."""
    global _received
    _received = None
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may handle signals; the caller's handling stays
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, _handler)
    return previous


def restore(previous):
    global _received
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    _received = None


def clear():
    """Forgets the signal that arrived: a program that stopped on it cleanly (live.py) says
    so itself, instead of the guard's line."""
    global _received
    _received = None


def check():
    """Raises ``Interrupted`` again if a signal arrived (its exception may have been lost)."""
    if _received is not None:
        raise Interrupted(_received)


def received():
    """The number of the signal that arrived, or None."""
    return _received
