"""Driving frames decoded, cropped and resized in a child process, for models that hold the GIL.

LiteRT's ``CompiledModel`` (testlite.py) keeps Python's GIL for the whole of each model call,
so the pipeline's reading thread, which resizes frames with skimage (about 0.06 s a 1280x720
frame on the reference machine), would only run between calls. Here a child Python process
reads the video with ``VideoReader`` and makes each frame with ``images.driving_frame`` (the
``--driving_box`` crop, then ``resize_frame``), as the thread does, and writes float32
batches into a ring of ``SLOTS`` batches that both processes map. The parent copies a batch
out and frees its slot between model calls: a few system calls a batch, which wait for no
model. The frames are the thread's, bit for bit (tests/test_frame_process.py).

Messages, child to parent: a little-endian int32 per batch, its number of frames (0: the
end; -1 or -2: an ``InputError`` or another error, followed by the length and the UTF-8 text
of its message). Parent to child: one byte per slot freed.

The child runs in a session of its own, so a terminal's Ctrl-C or hang-up, which reach the
whole foreground process group, reach only the parent, which handles them and ends the child
(a child that got them could die mid-import with a traceback). It ends by itself when the
parent goes away (its pipes close), and prints nothing but warnings it cannot avoid.
"""

import json
import mmap
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

from ..errors import InputError
from . import interrupt

SLOTS = 2  # batches the child may be ahead, as the reading thread's queue
_INT = struct.Struct("<i")
# The child imports this module by name: 'fomm_tf' when installed, 'modules' in a checkout.
_PACKAGE = __package__.split(".")[0]
_PATH_ENTRY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def available():
    """Whether a child can be started and given the ring and pipes (POSIX file descriptor
    passing, and a Python that runs ``-c``: an embedded one may have none, a frozen app's
    executable is the app)."""
    return os.name == "posix" and bool(sys.executable) and not getattr(sys, "frozen", False)


class FrameProcess:
    """Float32 batches [B, H, W, 3] of frames ``start``..``stop``-1 of ``path`` (``stop``
    None: to the end), each cropped to ``box`` (None: whole) and resized to ``frame_shape``,
    made in a child process that starts at once: its start (Python and its imports, about
    half a second) overlaps what the caller does before it iterates. Iterate once; ``close``
    (or the ``with`` block's end) ends the child."""

    def __init__(self, path, start, stop, box, frame_shape, batch_size, info=None):
        height, width = frame_shape
        self.shape = (SLOTS, batch_size, height, width, 3)
        size = int(np.prod(self.shape)) * 4
        memory = _anonymous_file(size)
        self.ring = mmap.mmap(memory.fileno(), size)
        self.messages, messages_out = os.pipe()
        acks_in, self.acks = os.pipe()
        job = dict(
            path=path,
            info=info,  # the parent's probe of the video: the child does not probe again
            start=start,
            stop=stop,
            box=[int(v) for v in box] if box else None,
            shape=self.shape,
            ring=memory.fileno(),
            messages=messages_out,
            acks=acks_in,
        )
        code = (
            f"import sys; sys.path.insert(0, {_PATH_ENTRY!r}); "
            f"from {_PACKAGE}.app import frame_process"
        )
        self.child = None
        try:
            self.child = subprocess.Popen(
                [sys.executable, "-c", code + "; frame_process.child()", json.dumps(job)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(memory.fileno(), messages_out, acks_in),
                start_new_session=True,
            )
        finally:
            for fd in (messages_out, acks_in):
                os.close(fd)
            memory.close()  # the mapping keeps the memory
            if self.child is None:
                self.close()

    def __iter__(self):
        frame = int(np.prod(self.shape[2:]))
        received = 0
        while count := _read_message(self.messages, self.child):
            offset = (received % SLOTS) * self.shape[1] * frame * 4
            view = np.frombuffer(self.ring, np.float32, count * frame, offset)
            batch = view.reshape(count, *self.shape[2:]).copy()
            del view  # the ring can close whenever the iteration stops
            try:
                os.write(self.acks, b"\x01")
            except BrokenPipeError:
                pass  # the child has sent its last batches and ended
            received += 1
            yield batch

    def close(self):
        if self.ring.closed:
            return
        self.ring.close()
        for fd in (self.messages, self.acks):
            os.close(fd)
        if self.child is not None:
            if self.child.poll() is None:
                self.child.kill()
            self.child.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _anonymous_file(size):
    """A file of ``size`` bytes with no name, for the ring (memory-backed where Linux can)."""
    try:
        memory = open(os.memfd_create("fomm-frames"), "r+b")
    except (AttributeError, OSError):  # not Linux, or a sandbox that refuses it
        memory = tempfile.TemporaryFile()
    memory.truncate(size)
    return memory


def _read_exact(fd, size):
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _read_message(fd, child):
    """The next batch's frame count (0 at the end); raises the child's error."""
    header = _read_exact(fd, _INT.size)
    if header is None:
        interrupt.check()  # a signal that reached both processes: it, not the child's end
        raise RuntimeError(
            f"the process that reads the driving video ended unexpectedly (exit code "
            f"{child.wait()})"
        )
    (count,) = _INT.unpack(header)
    if count >= 0:
        return count
    (length,) = _INT.unpack(_read_exact(fd, _INT.size))
    text = _read_exact(fd, length).decode("utf-8", "replace")
    raise InputError(text) if count == -1 else RuntimeError(text)


def child():
    """The child's side: ``sys.argv[1]`` is the job that ``FrameProcess`` wrote."""
    job = json.loads(sys.argv[1])
    messages, acks = job["messages"], job["acks"]
    try:
        _produce(job, messages, acks)
    except (BrokenPipeError, _ParentGone):
        pass  # the parent has stopped reading: nothing to tell
    except InputError as error:
        _send_error(messages, -1, str(error))
    except BaseException as error:  # told to the parent, which raises it
        _send_error(messages, -2, f"{type(error).__name__}: {error}")
    os._exit(0)  # no teardown: the ring's views and the reader's ffmpeg are closed with it


class _ParentGone(Exception):
    pass


def _produce(job, messages, acks):
    import importlib
    import threading
    import warnings

    from .images import driving_frame
    from .video import VideoReader

    # skimage.transform (0.3 s to import) loads while ffmpeg opens the video.
    threading.Thread(target=importlib.import_module, args=("skimage.transform",)).start()
    warnings.simplefilter("ignore")  # the parent opened the same video and warned already
    shape = tuple(job["shape"])
    ring = mmap.mmap(job["ring"], int(np.prod(shape)) * 4)
    slots = np.frombuffer(ring, np.float32).reshape(shape)
    box, batch_size, frame_shape = job["box"], shape[1], shape[2:4]
    sent = freed = filled = 0
    with VideoReader(job["path"], job["info"]) as reader:
        for frame in reader.frames(job["start"], job["stop"]):
            while filled == 0 and sent - freed == SLOTS:  # the next slot is still in use
                freed += len(_read_or_leave(acks))
            slots[sent % SLOTS, filled] = driving_frame(frame, box, frame_shape)
            filled += 1
            if filled == batch_size:
                os.write(messages, _INT.pack(filled))
                sent, filled = sent + 1, 0
                if sent == 1:
                    # Once the models have their first batch, they are the critical path:
                    # resizing ahead may use what CPU they leave but not slow XNNPACK's
                    # threads (1280x720, 100 frames: 26.0 s against 26.8 s, mean of 7).
                    os.nice(10)
    if filled:
        os.write(messages, _INT.pack(filled))
    os.write(messages, _INT.pack(0))


def _read_or_leave(fd):
    data = os.read(fd, SLOTS)
    if not data:
        raise _ParentGone
    return data


def _send_error(fd, kind, text):
    data = text.encode("utf-8")
    try:
        os.write(fd, _INT.pack(kind) + _INT.pack(len(data)) + data)
    except OSError:
        pass
