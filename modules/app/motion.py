"""Motion templates: the driving keypoints of one animation, saved once (``--save_motion``) and
replayed on any source image (``--driving_motion``) without the driving video, its decoder or
the keypoint detector. The same keypoints reach the same models, so a replay's frames are the
video run's frames, bit for bit, for the same backend, flags and batch size.

File format, version 1: a NumPy ``.npz`` (an uncompressed zip of ``.npy`` arrays), read with
``allow_pickle=False``; N frames, K keypoints:

===================== ========= ============== ===============================================
key                   dtype     shape          meaning
===================== ========= ============== ===============================================
version               int64     ()             1
fps                   float64   ()             frame rate of the driving video
frame_shape           int64     (2,)           (height, width) of the model's frames
num_kp                int64     ()             K
has_jacobian          bool      ()             whether the jacobian arrays are there
kp_driving_value      float32   (N, K, 2)      keypoints of each driving frame (kp_detector)
kp_driving_jacobian   float32   (N, K, 2, 2)   their jacobians (only with has_jacobian)
kp_initial_value      float32   (1, K, 2)      keypoints of the frame relative motion starts
                                               from (frame 0, or --best_frame's)
kp_initial_jacobian   float32   (1, K, 2, 2)   its jacobians (only with has_jacobian)
audio                 uint8     (bytes,)       optional: the driving video's first audio track,
                                               stream-copied into a Matroska audio file (.mka)
===================== ========= ============== ===============================================

No other key is allowed. Keypoints are the model's own: a template replays on models with the
same frame shape, keypoint count and jacobians, and means most to the model that made it.
"""

import contextlib
import dataclasses
import os
import subprocess
import tempfile
import warnings
import zipfile

import numpy as np

from ..atomic import discard, temp_beside
from ..errors import InputError
from .probe import INPUT_PARAMS, check_file, ffmpeg_arg, ffmpeg_exe, video_stream_info

VERSION = 1
# A template of the scripts' --max_frames default (100,000 frames of 10 keypoints: 24 MB) with
# an hour of audio (about 70 MB at 160 kbit/s) fits; anything larger is refused unread.
MAX_BYTES = 256 * 1024 * 1024
MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"  # EBML, the first bytes of every Matroska file
SCALARS = {
    "version": (np.integer, ()),
    "fps": (np.floating, ()),
    "frame_shape": (np.integer, (2,)),
    "num_kp": (np.integer, ()),
    "has_jacobian": (np.bool_, ()),
}
REMAKE = "make it again with --save_motion FILE.npz"


def keypoint_shapes(frames, num_kp, has_jacobian):
    """``{key: shape}`` of a template's keypoint arrays."""
    shapes = {
        "kp_driving_value": (frames, num_kp, 2),
        "kp_initial_value": (1, num_kp, 2),
    }
    if has_jacobian:
        shapes["kp_driving_jacobian"] = (frames, num_kp, 2, 2)
        shapes["kp_initial_jacobian"] = (1, num_kp, 2, 2)
    return shapes


@dataclasses.dataclass
class Motion:
    """A loaded motion template. Stands in for the driving VideoReader in the pipeline: it
    has ``path``, ``fps``, ``info`` (None: no media file) and ``close``, and hands out keypoint
    batches (``batches``) instead of frames."""

    path: str
    fps: float
    frame_shape: tuple
    num_kp: int
    has_jacobian: bool
    driving: dict  # {'value': [N, K, 2], 'jacobian': [N, K, 2, 2]}
    initial: dict  # the same, of one frame
    audio: bytes | None = None
    info = None

    def __len__(self):
        return len(self.driving["value"])

    def batches(self, batch_size, start=0, stop=None):
        """The driving keypoints of frames start..stop-1 in batches of ``batch_size``."""
        stop = len(self) if stop is None else min(stop, len(self))
        for begin in range(start, stop, batch_size):
            end = min(begin + batch_size, stop)
            yield {key: value[begin:end] for key, value in self.driving.items()}

    def check_fits(self, models):
        """InputError when the models take other keypoints or frames than the template's."""
        model = (tuple(models.frame_shape), models.num_kp, bool(models.has_jacobian))
        mine = (tuple(self.frame_shape), self.num_kp, self.has_jacobian)
        if model != mine:
            raise InputError(
                f"motion template '{self.path}' was made for {describe(*mine)}; these models "
                f"take {describe(*model)}. Make it with these models (--save_motion FILE.npz)"
            )

    @contextlib.contextmanager
    def audio_file(self):
        """Yields (path, ``video_stream_info``) of the template's audio written to a temporary
        .mka file, or (None, None) with a warning when it has none. The bytes are checked to
        be Matroska with one audio stream and no video before ffmpeg muxes them."""
        if self.audio is None:
            warnings.warn(f"No audio added: motion template '{self.path}' has no audio track.")
            yield None, None
            return
        bad = InputError(
            f"the audio in motion template '{self.path}' is not a Matroska audio track; "
            f"{REMAKE}, or leave out --audio"
        )
        handle, path = tempfile.mkstemp(prefix="fomm-motion-audio-", suffix=".mka")
        try:
            with os.fdopen(handle, "wb") as f:
                f.write(self.audio)
            try:
                info = video_stream_info(path)
            except InputError:
                raise bad from None
            if not info["format"].startswith("matroska") or info["video"] or not info["audio"]:
                raise bad
            yield path, info
        finally:
            discard(path)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def describe(frame_shape, num_kp, has_jacobian):
    height, width = frame_shape
    jacobians = "with" if has_jacobian else "without"
    return f"{width}x{height} frames and {num_kp} keypoints {jacobians} jacobians"


def is_template(driving):
    """Whether ``driving`` (a path or an object) names a motion template."""
    if isinstance(driving, Motion):
        return True
    return isinstance(driving, (str, os.PathLike)) and os.fspath(driving).lower().endswith(".npz")


def load(path, max_frames=None):
    """The Motion of the template file ``path``; InputError (one line: the file, what is
    wrong, what to do) for a missing, oversized, damaged or hostile file, one of another
    format or version, or one of more than ``max_frames`` frames."""
    path = check_file(path, "Motion template")
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        raise InputError(
            f"motion template '{path}' is {size / 1e6:.0f} MB; the limit is "
            f"{MAX_BYTES / 1e6:.0f} MB. Give a template written by --save_motion"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            # Declared sizes bound what is read: zipfile stops at them (and checks the CRC).
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_BYTES:
            raise InputError(
                f"motion template '{path}' unpacks to {unpacked / 1e6:.0f} MB; the limit is "
                f"{MAX_BYTES / 1e6:.0f} MB. Give a template written by --save_motion"
            )
        with np.load(path, allow_pickle=False) as data:
            return _parse(path, data, max_frames)
    except InputError:
        raise
    except Exception as error:  # a damaged zip: zipfile, numpy and zlib raise many kinds
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "allow_pickle" in reason or "Object arrays" in reason:
            reason = "it holds pickled Python objects, which are never loaded"
        raise InputError(f"cannot read motion template '{path}' ({reason}); {REMAKE}") from None


def _parse(path, data, max_frames):
    def bad(what):
        return InputError(f"motion template '{path}' {what}; {REMAKE}")

    headers = _headers(path, data)
    keys = set(headers)
    missing = [key for key in SCALARS if key not in keys]
    if missing:
        raise bad(f"has no {', '.join(missing)} (not a template of this program)")
    values = {}
    for key, (kind, shape) in SCALARS.items():
        if not np.issubdtype(headers[key][1], kind) or headers[key][0] != shape:
            raise bad(f"has {key} of {headers[key][1]} {headers[key][0]}")
        values[key] = data[key]
    if int(values["version"]) != VERSION:
        raise bad(
            f"is version {int(values['version'])}; this program reads version {VERSION} "
            "(a newer fomm-tf may read it)"
        )
    fps = float(values["fps"])
    if not (np.isfinite(fps) and 0 < fps <= 1000):
        raise bad(f"has a frame rate of {fps:g} fps")
    frame_shape = tuple(int(n) for n in values["frame_shape"])
    num_kp = int(values["num_kp"])
    if not (1 <= num_kp <= 1024 and all(1 <= n <= 4096 for n in frame_shape)):
        raise bad(f"has {num_kp} keypoints of {frame_shape} frames")
    has_jacobian = bool(values["has_jacobian"])
    driving_shape = headers.get("kp_driving_value", ((0,), None))[0]
    frames = driving_shape[0] if driving_shape else 0
    shapes = keypoint_shapes(frames, num_kp, has_jacobian)
    extra = keys - set(SCALARS) - set(shapes) - {"audio"}
    if extra:
        raise bad(f"has unknown keys {', '.join(sorted(extra))}")
    if not set(shapes) <= keys:
        raise bad(f"has no {', '.join(sorted(set(shapes) - keys))}")
    for key, shape in shapes.items():
        if headers[key] != (shape, np.dtype(np.float32)):
            got = f"{headers[key][1]} {headers[key][0]}"
            raise bad(f"has {key} of {got}; expected float32 {shape}")
    if frames < 1:
        raise bad("has no frames")
    if max_frames is not None and frames > max_frames:
        raise InputError(
            f"motion template '{path}' has {frames} frames, over the limit of {max_frames}; "
            f"give --max_frames {frames} to replay it"
        )
    if "audio" in keys and (headers["audio"][1] != np.uint8 or len(headers["audio"][0]) != 1):
        raise bad(f"has audio of {headers['audio'][1]} {headers['audio'][0]}; expected uint8 bytes")
    audio = data["audio"].tobytes() if "audio" in keys else None
    if audio is not None and not audio.startswith(MATROSKA_MAGIC):
        raise bad("holds audio that is not a Matroska audio track")
    arrays = {}
    for key in shapes:
        arrays[key] = data[key]
        if not np.isfinite(arrays[key]).all():
            raise bad(f"has NaN or infinite values in {key}")
    return Motion(
        path=path,
        fps=fps,
        frame_shape=frame_shape,
        num_kp=num_kp,
        has_jacobian=has_jacobian,
        driving=_kp(arrays, "driving"),
        initial=_kp(arrays, "initial"),
        audio=audio,
    )


def _headers(path, data):
    """``{key: (shape, dtype)}`` of every member, from the .npy headers only (no data read):
    object arrays (pickles), other members, and headers that declare more data than their
    member holds are refused here."""
    headers = {}
    for info in data.zip.infolist():
        name = info.filename
        if not name.endswith(".npy"):
            raise InputError(f"motion template '{path}' holds '{name}', not an array; {REMAKE}")
        with data.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0
            if version != (1, 0):
                read = np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        if dtype.hasobject:
            raise InputError(
                f"motion template '{path}' holds pickled Python objects ({name}), which are "
                f"never loaded; {REMAKE}"
            )
        if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > info.file_size:
            raise InputError(f"motion template '{path}' is truncated ({name}); {REMAKE}")
        headers[name[:-4]] = (tuple(shape), dtype)
    return headers


def _kp(arrays, role):
    return {
        key: arrays[f"kp_{role}_{key}"]
        for key in ("value", "jacobian")
        if f"kp_{role}_{key}" in arrays
    }


class Recorder:
    """Collects the driving keypoints of an animation, a batch at a time, and writes them as a
    template. Holds them in memory: 240 bytes a frame with 10 keypoints, so the scripts'
    --max_frames bounds it (24 MB at the default 100,000 frames)."""

    def __init__(self):
        self.batches = []
        self.initial = None

    def add(self, kp_driving, kp_initial):
        """One batch's driving keypoints, and the initial keypoints they move from."""
        self.batches.append({key: np.asarray(v, np.float32) for key, v in kp_driving.items()})
        if self.initial is None:
            self.initial = {key: np.asarray(v, np.float32) for key, v in kp_initial.items()}

    def save(self, path, fps, models, audio=None):
        """Writes the template to ``path`` atomically; ``audio``: bytes of a .mka file."""
        if not self.batches:
            raise InputError(f"no frames were animated; nothing written to '{path}'")
        driving = {key: np.concatenate([b[key] for b in self.batches]) for key in self.batches[0]}
        save(path, driving, self.initial, fps, models.frame_shape, audio)


def save(path, driving, initial, fps, frame_shape, audio=None):
    """Writes a template: ``driving`` and ``initial`` keypoints as ``{'value', 'jacobian'}``
    (the jacobian only for models that have one), ``fps``, ``frame_shape`` (height, width),
    ``audio`` bytes of a Matroska audio file or None. Atomic: written beside ``path`` and
    renamed into place."""
    arrays = {
        "version": np.int64(VERSION),
        "fps": np.float64(fps),
        "frame_shape": np.asarray(frame_shape, np.int64),
        "num_kp": np.int64(driving["value"].shape[1]),
        "has_jacobian": np.bool_("jacobian" in driving),
        **{f"kp_driving_{k}": np.asarray(v, np.float32) for k, v in driving.items()},
        **{f"kp_initial_{k}": np.asarray(v, np.float32) for k, v in initial.items()},
    }
    if audio is not None:
        arrays["audio"] = np.frombuffer(audio, np.uint8)
    size = sum(a.nbytes for a in arrays.values())
    if size > MAX_BYTES:
        raise InputError(
            f"the motion template would be {size / 1e6:.0f} MB, over the limit of "
            f"{MAX_BYTES / 1e6:.0f} MB; nothing written to '{path}'. Use --frames, or leave "
            f"out --audio"
        )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_beside(path)
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as error:
        raise InputError(
            f"cannot write motion template '{path}': {error.strerror}. Choose a writable path"
        ) from None
    finally:
        discard(tmp)


def audio_of(video_path, seconds=None):
    """The first audio track of ``video_path`` (cut to ``seconds``), stream-copied into a
    Matroska audio file, as bytes; None with a warning when it has none or ffmpeg fails."""
    if video_stream_info(video_path)["audio"] is None:
        warnings.warn(f"No audio saved in the motion template: '{video_path}' has no audio track.")
        return None
    handle, tmp = tempfile.mkstemp(prefix="fomm-motion-audio-", suffix=".mka")
    os.close(handle)
    try:
        limit = ["-t", f"{seconds:.6f}"] if seconds else []
        command = [ffmpeg_exe(), "-y", "-nostdin", "-v", "error", *INPUT_PARAMS]
        command += ["-i", ffmpeg_arg(video_path), "-map", "0:a:0", "-vn", "-c:a", "copy"]
        command += [*limit, "-f", "matroska", tmp]
        proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0 or os.path.getsize(tmp) == 0:
            reason = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
            warnings.warn(
                f"No audio saved in the motion template: ffmpeg failed"
                f"{': ' + reason[-1] if reason else ''}."
            )
            return None
        with open(tmp, "rb") as f:
            return f.read()
    finally:
        discard(tmp)


def record(animation, reader):
    """A Recorder of the driving keypoints of ``reader`` (a VideoReader or Frames) as
    ``animation`` (a pipeline Animation) would find them when animating, without animating:
    the same batches, the same initial frame (its ``best_frame``)."""
    recorder = Recorder()
    with animation.driving_batches(reader, 0) as batches:
        kp_initial = animation.initial_keypoints(reader, None)
        for batch in batches:
            kp = animation.models.kp_detector(image=batch)
            if kp_initial is None:
                kp_initial = {key: value[:1] for key, value in kp.items()}
            recorder.add(kp, kp_initial)
    return recorder
