"""``Animator``: the notebook API, the original's ``load_checkpoints`` + ``make_animation`` in
two calls, with the scripts' pipeline (modules/app/pipeline.py) behind it, so that its frames
are the scripts' frames for the same inputs and models.

    from fomm_tf import Animator
    animator = Animator.from_tflite("tflite/vox")
    frames = animator.animate("me.jpg", "talk.mp4", relative=True, adapt_scale=True)
"""

import os
import warnings
from collections.abc import Sequence

import numpy as np

from .app import motion
from .app.pipeline import DEFAULT_BATCH_SIZE, Animation, Frames, Settings

FRAME = "an HxWx3 array (uint8, or float in [0, 1])"
EXPECTED = f"{FRAME} or an image path"


class Animator:
    """Animates source images with driving videos, using one set of loaded models
    (a model source of modules/app/sources.py, or the Keras models of ``load_model``)."""

    def __init__(self, models, batch_size=DEFAULT_BATCH_SIZE):
        self.models = models
        self.batch_size = _count(batch_size, "batch_size", smallest=1)

    @classmethod
    def from_checkpoint(cls, config, checkpoint, precision="float32", **options):
        """The Keras models, loaded as run.py loads them (modules/app/backends.py):
        ``config`` a YAML file such as ``config/vox-256.yaml`` (or a model name: the
        package's own config), ``checkpoint`` the original's ``*-cpk.pth.tar``."""
        from .app.backends import Keras
        from .app.cli import config_path, import_tensorflow

        if not str(config).endswith((".yaml", ".yml")) and not os.path.exists(config):
            config = config_path(config)
        import_tensorflow()
        return cls(Keras.models(config, checkpoint, precision=precision), **options)

    @classmethod
    def from_saved_model(cls, folder, **options):
        """build.py's SavedModels, loaded as test.py loads them: ``folder`` such as
        ``saved_models/vox``."""
        from .app.backends import SavedModel
        from .app.cli import import_tensorflow

        import_tensorflow()
        return cls(SavedModel.models(folder, "python build.py --model NAME"), **options)

    @classmethod
    def from_tflite(cls, folder, quantize=None, threads=None, weight_cache=True, **options):
        """build.py's TF Lite models on LiteRT, loaded as testlite.py loads them: ``folder`` such as
        ``tflite/vox``; ``quantize`` 'float16' or 'dynamic' takes ``tflite/vox-dynamic``
        (build.py --quantize); ``weight_cache`` keeps XNNPACK's packed weights between runs,
        as testlite.py does (False: in memory only)."""
        from .app.backends import Lite
        from .export.contract import QUANTIZATIONS

        if quantize is not None:
            if quantize not in QUANTIZATIONS:
                raise ValueError(f"quantize must be one of {QUANTIZATIONS} or None: {quantize!r}")
            folder = f"{os.fspath(folder).rstrip('/' + os.sep)}-{quantize}"
        hint = "python build.py --model NAME" + (f" --quantize {quantize}" if quantize else "")
        return cls(Lite.models(folder, hint, threads, weight_cache), **options)

    def animate(self, source, driving, **motion):
        """The animation as a list of HxWx3 uint8 frames; see ``stream``."""
        return list(self.stream(source, driving, **motion))

    def stream(
        self, source, driving, relative=False, adapt_scale=False, best_frame=None,
        find_best_frame=False,
    ):  # fmt: skip
        """Yields the animation's HxWx3 uint8 frames one at a time; with a video path,
        memory stays flat in the video's length.

        ``source``: an HxWx3 array (uint8, or float in [0, 1]) of any size, resized as
        demo.py does, or an image path. ``driving``: a video path, a sequence of such
        frames, or a motion template (a path ending in .npz, or ``Animator.load_motion``'s;
        ``best_frame`` and ``find_best_frame`` do not apply to one). ``relative``,
        ``adapt_scale``, ``best_frame``, ``find_best_frame``: as the scripts' flags
        (demo.py's). Other inputs raise one ValueError saying what was expected."""
        if best_frame is not None and find_best_frame:
            raise ValueError("best_frame and find_best_frame both choose the starting frame")
        settings = Settings(
            relative=bool(relative),
            adapt_scale=bool(adapt_scale),
            best_frame=None if best_frame is None else _count(best_frame, "best_frame"),
            find_best_frame=bool(find_best_frame),
            batch_size=self.batch_size,
        )
        source = _source(source)
        animation = Animation(self.models, settings)
        if motion.is_template(driving):
            if best_frame is not None or find_best_frame:
                raise ValueError(
                    "best_frame and find_best_frame do not apply to a motion template: it "
                    "starts from its own initial keypoints"
                )
            template = driving if isinstance(driving, motion.Motion) else self.load_motion(driving)
            template.check_fits(self.models)
            for batch in animation.batches_of(source, template):
                yield from batch
            return
        if isinstance(driving, (str, os.PathLike)):
            yield from self._from_video(animation, source, os.fspath(driving))
            return
        frames = _frames(driving)
        if best_frame is not None and best_frame >= len(frames):
            raise ValueError(f"best_frame {best_frame} is past the last of {len(frames)} frames")
        for batch in animation.batches_of(source, Frames(frames, image)):
            yield from batch

    @staticmethod
    def load_motion(path):
        """The motion template at ``path`` (an .npz of ``save_motion`` or the scripts'
        --save_motion), checked once, to animate several sources without reading it again."""
        from .app.animate import DEFAULT_MAX_FRAMES

        return motion.load(os.fspath(path), DEFAULT_MAX_FRAMES)

    def save_motion(self, driving, path, best_frame=None, audio=False, fps=25.0):
        """Saves the driving keypoints of ``driving`` (a video path, or a sequence of frames
        at ``fps``) as a motion template at ``path`` (.npz; docs/motion-templates.md), the
        keypoints the scripts' --save_motion saves for the same batch size; relative motion
        starts from frame ``best_frame`` (default 0). ``audio``: keep the video's audio
        track too. Returns the number of frames."""
        from .app.video import VideoReader

        if not os.fspath(path).lower().endswith(".npz"):
            raise ValueError(f"path must end in .npz: {path!r}")
        first = None if best_frame is None else _count(best_frame, "best_frame")
        animation = Animation(self.models, Settings(best_frame=first, batch_size=self.batch_size))
        if isinstance(driving, (str, os.PathLike)):
            with VideoReader(os.fspath(driving)) as reader:
                recorder = motion.record(animation, reader)
                fps = reader.fps
            sound = motion.audio_of(os.fspath(driving)) if audio else None
        else:
            frames = _frames(driving)
            if first is not None and first >= len(frames):
                raise ValueError(f"best_frame {first} is past the last of {len(frames)} frames")
            recorder = motion.record(animation, Frames(frames, image))
            sound = None
        recorder.save(os.fspath(path), fps, self.models, sound)
        return sum(len(batch["value"]) for batch in recorder.batches)

    def _from_video(self, animation, source, path):
        from .app.integrity import DecodeCheck
        from .app.video import VideoReader

        with VideoReader(path) as reader:
            count = 0
            for batch in animation.batches_of(source, reader):
                count += len(batch)
                yield from batch
            damage = DecodeCheck(path, None, reader.fps).check(False)
        if count == 0:
            raise ValueError(f"'{path}' has no video frames")
        if damage:
            warnings.warn(f"{damage}; the animation used what decoded", stacklevel=3)


def image(value, what="source"):
    """``value`` as the pipeline takes an image read from a file: uint8 as it is, float in
    [0, 1] as float64; ValueError for anything else."""
    expected = EXPECTED if what == "source" else FRAME
    array = np.asarray(value)
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise ValueError(f"{what} has shape {array.shape}; expected {expected}")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{what} is {array.dtype}; expected {expected}")
    low, high = float(np.min(array)), float(np.max(array))
    if not (0 <= low and high <= 1):  # NaN fails too
        raise ValueError(
            f"{what} has values from {low:g} to {high:g}; expected {expected} "
            f"(divide 0-255 floats by 255)"
        )
    return array.astype(np.float64)


def _source(source):
    if isinstance(source, (str, os.PathLike)):
        from .app.images import load_image

        return load_image(os.fspath(source))
    return image(source, "source")


def _frames(driving):
    """A sequence of driving frames (frames are checked one by one as they are read)."""
    if isinstance(driving, np.ndarray):
        if driving.ndim != 4:
            raise ValueError(
                f"driving has shape {driving.shape}; expected a video path or a sequence of "
                f"frames, each {FRAME}"
            )
    elif not isinstance(driving, Sequence):
        try:
            driving = list(driving)
        except TypeError:
            raise ValueError(
                f"driving is a {type(driving).__name__}; expected a video path or a sequence "
                f"of frames"
            ) from None
    if len(driving) == 0:
        raise ValueError("driving has no frames")
    image(driving[0], "driving frame 0")
    return driving


def _count(value, name, smallest=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < smallest:
        raise ValueError(f"{name} must be an integer of at least {smallest}, got {value!r}")
    return int(value)
