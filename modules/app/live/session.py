"""The live loop: take the newest camera frame, animate it (batch 1), hand the result to every
output; the same model calls as the batch pipeline's (modules/app/pipeline.py), so that a
result equals the scripts' frame for the same driving frame and reference."""

import threading
import time

from skimage import img_as_ubyte

from .. import interrupt
from ..images import driving_frame
from ..pipeline import Animation, Settings, named
from .server import Picture, jpeg


class Session:
    """One live session: ``models`` (a model source), the source image (uint8, cropped
    already), the camera (open), the driving box (None: whole frames), the stats and the
    outputs (``server``, ``stream``, ``recording``, ``motion``: a motion.Recorder; each may
    be None)."""

    def __init__(self, models, source_uint8, camera, stats, relative=False, adapt_scale=False):
        self.models = models
        self.camera = camera
        self.stats = stats
        self.relative, self.adapt_scale = relative, adapt_scale
        self.driving_box = None
        self.stream = self.recording = self.motion = None
        self.animation = Animation(models, Settings(relative, adapt_scale, batch_size=1))
        self.source, self.kp_source, self.encoded = self.animation.prepare_source(source_uint8)
        self.source_jpeg = jpeg(img_as_ubyte(self.source[0]))
        self.camera_picture, self.result_picture = Picture(), Picture()
        self._reset = threading.Event()
        self.stop = threading.Event()  # the key q

    def warm_up(self):
        """One frame through the three models (the source as its own driving frame), before
        the camera opens: the first call of a model traces or packs its weights, which would
        otherwise be the first results' latency."""
        kp = self.kp_source
        kp_norm = self.models.process_kp(
            **named("source", kp),
            **named("driving", kp),
            **named("initial", kp),
            use_relative_movement=float(self.relative),
            use_relative_jacobian=float(self.relative),
            adapt_movement_scale=float(self.adapt_scale),
        )
        self.models.animate_encoded(
            **self.encoded, **named("source", kp), **named("driving", kp_norm)
        )

    def request_reset(self):
        """The next frame animated becomes the reference of relative motion. Returns None,
        or why the reset is refused: a motion template holds one reference (its initial
        keypoints), so while one is saved with --relative a new reference would make its
        replay differ from what the session showed."""
        if self.motion is not None and self.relative:
            return (
                "reset refused: --save_motion keeps the first camera frame as the reference "
                "of --relative, so that the motion template replays what was shown"
            )
        self._reset.set()
        return None

    def keypoints(self, pixels):
        """(the driving frame as the models take it, its keypoints, seconds of each)."""
        began = time.perf_counter()
        driving = driving_frame(pixels, self.driving_box, self.models.frame_shape)[None]
        resized = time.perf_counter()
        kp = self.models.kp_detector(image=driving)
        return kp, resized - began, time.perf_counter() - resized

    def run(self):
        """Animates frames until the camera ends (a file's end, ``--frames``), the key q, or
        an error (a camera that stopped: InputError) or a signal, which reach the caller."""
        kp_initial = None
        while not self.stop.is_set():
            frame = self.camera.take()
            if frame is None:
                return
            interrupt.check()
            if kp_initial is None:  # the first camera frame is the reference
                kp_initial = self.keypoints(self.camera.first.pixels)[0]
            kp_driving, resize_s, kp_s = self.keypoints(frame.pixels)
            if self._reset.is_set():
                self._reset.clear()
                kp_initial = kp_driving
                self.stats.reset(frame.index)
            t0 = time.perf_counter()
            kp_norm = self.models.process_kp(
                **named("source", self.kp_source),
                **named("driving", kp_driving),
                **named("initial", kp_initial),
                use_relative_movement=float(self.relative),
                use_relative_jacobian=float(self.relative),
                adapt_movement_scale=float(self.adapt_scale),
            )
            t1 = time.perf_counter()
            out = self.models.animate_encoded(
                **self.encoded, **named("source", self.kp_source), **named("driving", kp_norm)
            )
            t2 = time.perf_counter()
            result = img_as_ubyte(out["prediction"][0])
            ready = time.perf_counter()
            self.camera_picture.put(frame.pixels)
            self.result_picture.put(result)
            for output in (self.stream, self.recording):
                if output is not None:
                    output.put(result)
            if self.motion is not None:  # what process_kp took: a replay animates the same
                self.motion.add(kp_driving, kp_initial)
            stages = {
                "resize": resize_s,
                "kp_detector": kp_s,
                "process_kp": t1 - t0,
                "generator": t2 - t1,
                "convert": ready - t2,
            }
            self.stats.frame(frame, stages, ready)
