"""The animation pipeline shared by run.py, test.py and testlite.py: demo.py's steps, streamed.

demo.py reads every frame, resizes it with skimage, detects keypoints, normalizes them against
the first (or best) driving frame, runs the generator and saves ``img_as_ubyte`` frames. Here
the video is decoded, animated in batches and encoded as it goes, so memory does not grow with
its length: decoding and resizing run in one background thread, encoding in another, while
the models run in the calling thread. TensorFlow releases the GIL while a model runs; LiteRT's
``CompiledModel`` (testlite.py) holds it, so for such models frames that need resizing are
decoded and resized in a child process instead (modules/app/frame_process.py), which no model
call holds up (docs/speed.md).
"""

import contextlib
import dataclasses
import queue
import threading

import numpy as np
from skimage import img_as_ubyte

from ..errors import InputError
from . import frame_process, interrupt, motion
from .images import driving_frame, load_image, resize_frame
from .integrity import DecodeCheck
from .sources import ModelSource
from .video import VideoReader
from .video_writer import VideoWriter
from .visualize import side_by_side

# From benchmarks/bench.py on the 2-core reference machine (docs/speed.md): batch 4 is as fast
# as batch 1 or faster on every target.
DEFAULT_BATCH_SIZE = 4


@dataclasses.dataclass
class Settings:
    relative: bool = False
    adapt_scale: bool = False
    best_frame: int = None  # demo.py --best_frame
    find_best_frame: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    frames: int = None  # the first N frames only
    side_by_side: bool = False
    audio: bool = False
    overwrite: bool = False  # replace the numbered frames already in a PNG folder
    strict: bool = False  # a damaged driving video is an error, not a warning
    framing: object = None  # modules.app.framing.Framing: face crops and paste-back
    save_motion: str = None  # write the driving keypoints here (modules/app/motion.py)


def named(role, kp):
    """``{'value': v, 'jacobian': j}`` -> ``{'kp_ROLE_value': v, 'kp_ROLE_jacobian': j}``."""
    return {f"kp_{role}_{key}": value for key, value in kp.items()}


def take(kp, index):
    return {key: value[index : index + 1] for key, value in kp.items()}


def normalized_shape(kp_value, hull_area):
    """demo.py's ``find_best_frame`` normalisation: centred points divided by the square root
    of their convex hull area (1 for a degenerate hull, which has none)."""
    centred = kp_value - kp_value.mean(axis=0, keepdims=True)
    area = float(hull_area(kp_value))
    return centred / np.sqrt(area) if area > 0 else centred


class Animation:
    """Animates one source image with one driving video using ``models`` and writes the
    frames to an output path."""

    def __init__(self, models: ModelSource, settings: Settings):
        self.models = models
        self.settings = settings
        self.damage = None  # after run: how the driving video is damaged, if it is
        self.recorder = None  # a motion.Recorder, given each batch's driving keypoints

    def run(self, source_path, driving, output_path, progress=None):
        """Writes the animation of the image ``source_path`` by ``driving`` (a video path,
        the VideoReader that probed and opened it, or a loaded motion template); returns
        (frames written, fps of the driving video)."""
        s = self.settings
        source_uint8 = load_image(source_path)
        reader = driving
        if not isinstance(reader, (VideoReader, motion.Motion)):
            reader = VideoReader(driving)
        driving_path = reader.path
        template = isinstance(reader, motion.Motion)
        if template:
            reader.check_fits(self.models)
        decode_check = None if template else DecodeCheck(driving_path, s.frames, reader.fps)
        if s.strict and decode_check:
            decode_check.check(strict=True)  # fail before any model runs
        self.recorder = motion.Recorder() if s.save_motion else None
        limit = min(s.frames or len(reader), len(reader)) if template else s.frames
        audio = reader.audio_file() if template and s.audio else None
        with (
            reader,
            audio or contextlib.nullcontext((driving_path, reader.info)) as (audio_path, info),
            VideoWriter(
                output_path,
                reader.fps,
                audio_from=audio_path if s.audio else None,
                audio_seconds=limit / reader.fps if limit and s.audio else None,
                audio_info=info,
                overwrite=s.overwrite,
            ) as writer,
        ):
            count = 0
            with Encoder(writer) as encoder:
                for frames in self.batches_of(source_uint8, reader):
                    encoder.put(frames)
                    count += len(frames)
                    if progress:
                        progress(len(frames))
            if count == 0:
                raise InputError(
                    f"'{driving_path}' has no video frames. Give a video file with frames."
                )
            # Before the writer puts the output in place; the caller prints the warning.
            self.damage = decode_check.check(s.strict) if decode_check else None
            if self.recorder:
                seconds = limit / reader.fps if limit else None
                audio = motion.audio_of(audio_path, seconds) if s.audio and audio_path else None
                self.recorder.save(s.save_motion, reader.fps, self.models, audio)
        return count, reader.fps

    def batches_of(self, source_uint8, reader):
        """The animation of ``source_uint8`` (the source image as read, any size) by the
        frames of ``reader`` (a VideoReader, or ``Frames``): uint8 output frames, a batch at
        a time."""
        s = self.settings
        # Entered before the source is encoded, which a frame process's start overlaps.
        with self.driving_batches(reader, 0) as driving_batches:
            crops = s.framing.sources(source_uint8) if s.framing else [source_uint8]
            sources = [self.prepare_source(crop) for crop in crops]
            source, kp_source, encoded = sources[0]
            kp_initial = self.initial_keypoints(reader, kp_source)
            source_view = img_as_ubyte(source[0]) if s.side_by_side else None
            for driving in driving_batches:
                interrupt.check()  # in case a model call swallowed a signal's exception
                kp_driving, kp_norm, prediction = self.animate_batch(
                    driving, encoded, kp_source, kp_initial
                )
                if kp_initial is None:
                    kp_initial = take(kp_driving, 0)
                if self.recorder:
                    self.recorder.add(kp_driving, kp_initial)
                frames = img_as_ubyte(prediction)
                if s.framing and s.framing.paste_back:  # every other face, pasted back
                    others = [
                        self.animate_batch(driving, more, kp, kp_initial)[2]
                        for _, kp, more in sources[1:]
                    ]
                    frames = s.framing.compose(source_uint8, [prediction, *others])
                if s.side_by_side:
                    frames = [
                        side_by_side_frame(
                            source_view, kp_source, driving[i], kp_driving, frames[i], kp_norm, i
                        )
                        for i in range(len(frames))
                    ]
                yield frames

    def prepare_source(self, image):
        """(source [1, H, W, 3], its keypoints, its encode_source outputs) of a uint8 image."""
        source = resize_frame(image, self.models.frame_shape).astype(np.float32)[None]
        kp_source = self.models.kp_detector(image=source)
        return source, kp_source, self.models.encode_source(source_image=source)

    def animate_batch(self, driving, encoded, kp_source, kp_initial=None):
        """One batch of driving frames [B, H, W, 3] -> (driving keypoints, normalized
        keypoints, predictions [B, H, W, 3]); ``kp_initial`` None: the batch's first frame.
        ``driving`` may be the batch's keypoints instead (a motion template's)."""
        s = self.settings
        if not isinstance(driving, dict):
            driving = self.models.kp_detector(image=driving)
        kp_driving = driving
        kp_initial = kp_initial if kp_initial is not None else take(kp_driving, 0)
        kp_norm = self.models.process_kp(
            **named("source", kp_source),
            **named("driving", kp_driving),
            **named("initial", kp_initial),
            use_relative_movement=float(s.relative),
            use_relative_jacobian=float(s.relative),
            adapt_movement_scale=float(s.adapt_scale),
        )
        out = self.models.animate_encoded(
            **encoded, **named("source", kp_source), **named("driving", kp_norm)
        )
        return kp_driving, kp_norm, out["prediction"]

    def driving_batches(self, reader, start, stop=None):
        """Resized float32 driving frames in batches of ``batch_size``, made ahead in a
        background thread, or in a child process (modules/app/frame_process.py) for models
        that hold the GIL while they run, when frames need resizing; to use in a ``with``
        block, which ends the thread or the process. A motion template gives batches of
        keypoints instead."""
        stop = self.settings.frames if stop is None else stop
        if isinstance(reader, motion.Motion):
            return contextlib.nullcontext(reader.batches(self.settings.batch_size, start, stop))
        box = self.driving_box
        width, height = reader.size
        resizing = box is not None or (height, width) != tuple(self.models.frame_shape)
        in_child = getattr(self.models, "holds_gil", False) and resizing
        if in_child and isinstance(reader, VideoReader) and frame_process.available():
            reader.close()  # the child decodes: this process's decoder would idle
            shape, batch_size = self.models.frame_shape, self.settings.batch_size
            return frame_process.FrameProcess(
                reader.path, start, stop, box, shape, batch_size, reader.info
            )
        return contextlib.closing(prefetch(self.batches(reader, start, stop)))

    @property
    def driving_box(self):
        """The box each driving frame is cropped to (None: whole frames)."""
        return self.settings.framing.driving_box if self.settings.framing else None

    def batches(self, reader, start, stop):
        """Resized float32 driving frames in batches of ``batch_size``."""
        box, shape = self.driving_box, self.models.frame_shape
        batch = []
        for frame in reader.frames(start, stop):
            batch.append(driving_frame(frame, box, shape))
            if len(batch) == self.settings.batch_size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)

    def initial_keypoints(self, reader, kp_source):
        """Keypoints of the frame that relative motion starts from: demo.py's first frame
        (None: taken from the first batch), ``--best_frame N`` or ``--find_best_frame``."""
        s = self.settings
        if isinstance(reader, motion.Motion):
            return reader.initial  # the template's own; --best_frame does not apply
        if s.best_frame is not None:
            with self.driving_batches(reader, s.best_frame, s.best_frame + 1) as batches:
                for frame in batches:
                    return self.models.kp_detector(image=frame)
            available = f"{s.frames} frames are used" if s.frames else "it has fewer frames"
            raise InputError(
                f"--best_frame {s.best_frame} is past the end of '{reader.path}' "
                f"({available}); frames count from 0"
            )
        if s.find_best_frame:
            return self.find_best_frame(reader, kp_source)
        return None

    def find_best_frame(self, reader, kp_source):
        """demo.py's ``find_best_frame`` with the model's own keypoints instead of face
        landmarks (see ``BestFrame``). Prints the frame as demo.py does and returns its
        keypoints."""
        search = BestFrame(kp_source)
        with self.driving_batches(reader, 0) as batches:
            for batch in batches:
                search.add(self.models.kp_detector(image=batch))
        print(f"Best frame: {search.index}")
        return search.keypoints


class Frames:
    """Driving frames given as a sequence of arrays instead of a video file, with what the
    pipeline reads of a VideoReader: ``frames(start, stop)``, ``size`` and ``path``. Each
    frame goes through ``check`` (which validates it and may raise ValueError) when read."""

    path = "the driving frames"

    def __init__(self, frames, check):
        self._frames = frames
        self._check = check
        height, width = np.shape(frames[0])[:2]
        self.size = (width, height)

    def frames(self, start=0, stop=None):
        stop = len(self._frames) if stop is None else min(stop, len(self._frames))
        for index in range(start, stop):
            yield self._check(self._frames[index], f"driving frame {index}")


class BestFrame:
    """demo.py's ``find_best_frame`` over keypoints that arrive in batches: the first frame
    whose normalized keypoints (``normalized_shape``) are closest, in summed squared distance,
    to the source's. ``index`` and ``keypoints`` (batch 1) are the best frame so far."""

    def __init__(self, kp_source):
        from .cli import import_tensorflow

        import_tensorflow()  # quietly: testlite.py has not loaded it
        from ..hull import convex_hull_area

        self.hull_area = convex_hull_area
        self.target = normalized_shape(kp_source["value"][0], convex_hull_area)
        self.index, self.keypoints, self.distance, self.count = 0, None, float("inf"), 0

    def add(self, kp):
        """Keypoints of the next frames: ``{'value': [B, K, 2], ...}``."""
        for i in range(len(kp["value"])):
            shape = normalized_shape(kp["value"][i], self.hull_area)
            distance = float(((self.target - shape) ** 2).sum())
            if distance < self.distance:
                self.index, self.keypoints, self.distance = self.count + i, take(kp, i), distance
        self.count += len(kp["value"])


def side_by_side_frame(source_view, kp_source, driving, kp_driving, result, kp_norm, i):
    return side_by_side(
        source_view,
        kp_source["value"][0],
        img_as_ubyte(driving),
        kp_driving["value"][i],
        result,
        kp_norm["value"][i],
    )


def prefetch(iterable, depth=2):
    """Iterates ``iterable`` in a background thread, up to ``depth`` items ahead; exceptions
    are re-raised here, and closing the generator stops the thread."""
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def offer(item):
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce():
        try:
            for item in iterable:
                offer(item)
                if stop.is_set():
                    break
            offer(done)
        except BaseException as error:  # handed to the consumer
            offer(error)
        finally:
            getattr(iterable, "close", lambda: None)()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class Encoder:
    """Appends frames to a VideoWriter from a background thread; ``put`` hands over a batch
    (waiting while two are pending) and re-raises a failure of the writer."""

    def __init__(self, writer, depth=2):
        self.writer = writer
        self.pending = queue.Queue(maxsize=depth)
        self.error = None
        self.thread = threading.Thread(target=self._work, daemon=True)

    def _work(self):
        while True:
            frames = self.pending.get()
            if frames is None:
                return
            if self.error is None:
                try:
                    for frame in frames:
                        self.writer.append(frame)
                except BaseException as error:  # re-raised in the caller's thread
                    self.error = error

    def put(self, frames):
        if self.error is not None:
            raise self.error
        self.pending.put(frames)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.pending.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error
