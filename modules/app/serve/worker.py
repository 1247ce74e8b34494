"""The worker: one thread that runs the queued jobs one at a time (the models use every
core), with the scripts' pipeline (modules/app/pipeline.py), so a job's frames are the
script's frames for the same inputs and backend."""

import collections
import copy
import hashlib
import logging
import os
import secrets
import threading
import time
import traceback

from ...errors import FommError, InputError
from . import jobspec
from .handover import Handover
from .store import HEARTBEAT_S, RESULT

log = logging.getLogger("fomm.serve")
# How often a running job's frames_done reaches the disk.
PROGRESS_S = 0.5
# Up to this many frames, a job resizes its driving frames in a thread rather than in the
# frame process the scripts start for LiteRT (modules/app/frame_process.py): that child's
# start (about a second) outweighs what it saves on a short video. Same frames either way.
SHORT_VIDEO_FRAMES = 64
# Source images whose keypoints and encoding are kept (an app often animates the same few).
KEPT_SOURCES = 8


class _Cancelled(Exception):
    """The job was deleted while it ran."""


class _Stopping(Exception):
    """The server is shutting down: the job goes back to the queue."""


class Worker:
    def __init__(self, store, models, metrics, max_frames):
        self.store, self.models, self.metrics = store, models, metrics
        self.max_frames = max_frames
        self.owner = secrets.token_hex(8)
        self.sources = collections.OrderedDict()  # Worker.animation
        self.handover = Handover()  # the driving videos that uploads opened
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="fomm-worker", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self, timeout=30):
        """Stops at the running job's next batch; that job is queued again."""
        self.stopping.set()
        self.wake.set()
        self.thread.join(timeout)
        self.handover.close()

    def loop(self):
        while not self.stopping.is_set():
            ran = False
            for job_id in self.store.queued():
                if self.stopping.is_set():
                    return
                if self.store.claim(job_id, self.owner):
                    self.run(job_id)
                    ran = True
                    break
            if not ran:  # jobs of other replicas and restarts show up within a second
                self.handover.expire()
                self.wake.wait(1.0)
                self.wake.clear()

    def run(self, job_id):
        store = self.store
        folder = store.folder(job_id)
        state = store.state(job_id)
        if state is None or store.cancelled(job_id):
            self.handover.drop(job_id)
            store.remove(job_id)
            return
        began = time.perf_counter()
        store.update(job_id, status="running", frames_done=0, error=None, started=time.time())
        done, last = 0, 0.0

        def progress(count):
            nonlocal done, last
            done += count
            self.metrics.frames.inc(count)
            if store.cancelled(job_id):
                raise _Cancelled()
            if self.stopping.is_set():
                raise _Stopping()
            if done > self.max_frames:  # a header that declared fewer frames than it has
                raise InputError(f"the driving video has more than {self.max_frames} frames")
            now = time.perf_counter()
            if now - last > PROGRESS_S:
                last = now
                store.update(job_id, frames_done=done)
            if now - began > HEARTBEAT_S:
                store.heartbeat(job_id)

        status, fields = "failed", {}
        try:
            count, warning = self.animate(state, folder, progress, job_id)
            status, fields = "done", {"frames_done": count, "frames_total": count}
            if warning:
                fields["warning"] = warning
        except _Cancelled:
            status = "cancelled"
        except _Stopping:
            store.update(job_id, status="queued", frames_done=0)
            store.release(job_id)
            return
        except FommError as error:
            fields = {"error": str(error)}
        except Exception as error:  # a bug: the job fails, the server goes on
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            fields = {"error": f"internal error ({type(error).__name__})"}
        seconds = time.perf_counter() - began
        self.metrics.job_ended(status, seconds, fields.get("frames_done", done))
        if status == "cancelled" or store.cancelled(job_id):
            store.remove(job_id)
            return
        store.update(job_id, status=status, finished=time.time(), seconds=seconds, **fields)
        store.release(job_id)

    def animation(self, models, settings):
        """The scripts' Animation, whose sources (keypoints and encoding: a third of a
        1-frame job) are kept for the next jobs with the same image."""
        from ..pipeline import Animation

        sources = self.sources

        class Kept(Animation):
            def prepare_source(self, image):
                key = (hashlib.sha256(image.tobytes()).hexdigest(), image.shape, image.dtype.str)
                if key not in sources:
                    sources[key] = copy.deepcopy(super().prepare_source(image))
                    while len(sources) > KEPT_SOURCES:
                        sources.popitem(last=False)
                sources.move_to_end(key)
                return copy.deepcopy(sources[key])  # never shared with a running job

        return Kept(models, settings)

    def animate(self, state, folder, progress, job_id=None):
        """Runs the job's animation as the scripts do; returns (frames, damage warning)."""
        from .. import framing

        source = os.path.join(folder, state["source"])
        driving = os.path.join(folder, state.get("motion") or state["driving"])
        output = os.path.join(folder, RESULT)
        opened = self.handover.take(job_id, driving)
        try:
            request, reader, total = jobspec.checked(
                state["options"], source, driving, output, self.max_frames, opened
            )
        except BaseException:
            if opened is not None:
                opened.close()  # closing twice is harmless
            raise
        models = self.models
        if total is not None and total <= SHORT_VIDEO_FRAMES:
            models = InThread(models)
        with reader:
            faces = framing.from_args(request, reader)
            animation = self.animation(models, request.settings(faces))
            count, _ = animation.run(request.source_image, reader, output, progress=progress)
        return count, animation.damage


class InThread:
    """``models``, with the pipeline told that they leave the GIL free, so that it resizes
    the driving frames in a thread instead of a child process."""

    holds_gil = False

    def __init__(self, models):
        self._models = models

    def __getattr__(self, name):
        return getattr(self._models, name)
