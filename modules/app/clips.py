"""crop.py: crop-video.py's job, finished. It finds the faces of a video, follows them over
time (modules/app/tracking.py) and writes each long-enough track as its own clip, cropped to
the track's square box, scaled to ``--image_shape``, with its segment of the audio.

Two passes over the video, so memory stays flat: the first detects and tracks, the second
writes every clip at once.
"""

import os
import sys

from ..errors import InputError, UsageError
from . import cli
from .boxes import crop, grow
from .tracking import Tracker

DESCRIPTION = (
    "Finds the faces of a video and writes each one, cropped and scaled, as its own clip with "
    "its audio: the job of the original's crop-video.py, which only printed ffmpeg commands."
)


def image_shape(text):
    """crop-video.py's ``--image_shape``: ``width,height`` (it becomes ffmpeg's scale=W:H)."""
    try:
        width, height = (int(v) for v in text.split(","))
    except ValueError:
        width = height = 0
    if width < 1 or height < 1:
        raise UsageError(f"--image_shape {text!r}: give width,height in pixels, e.g. 256,256")
    return width, height


def parser(prog, description):
    p = cli.ArgumentParser(prog=prog, description=description)
    p.add_argument(
        "--input", "--inp", dest="input", required=True, metavar="VIDEO", help="input video"
    )
    p.add_argument(
        "--output", default="crops", metavar="DIR", help="folder for the clips (default: crops)"
    )
    p.add_argument(
        "--image_shape",
        default="256,256",
        metavar="W,H",
        help="size of the clips, width,height (default: 256,256)",
    )
    p.add_argument(
        "--increase",
        type=float,
        default=0.1,
        help="grow the face box by this fraction of its size on each side (default: 0.1)",
    )
    p.add_argument(
        "--iou_with_initial",
        type=float,
        default=0.25,
        help="a track ends when the face's IoU with its first box is at most this (default: 0.25)",
    )
    p.add_argument(
        "--min_frames",
        type=int,
        default=150,
        help="keep tracks that span more than this many frames (default: 150)",
    )
    p.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is available")
    return p


def find_tracks(path, tracker, progress=None):
    """Every kept track of the video at ``path``, in order of their first frame, and the
    number of frames."""
    from .faces import detect_faces
    from .video import VideoReader

    tracks, count = [], 0
    with VideoReader(path) as reader:
        for index, frame in enumerate(reader):
            tracks += tracker.update(index, [f.box for f in detect_faces(frame)])
            count = index + 1
            if progress:
                progress(1)
    tracks += tracker.finish()
    return sorted(tracks, key=lambda t: (t.start, t.initial)), count


def write_clips(path, clips, shape, progress=None):
    """Writes ``clips`` (a list of (output path, Track, box)) from the video at ``path``,
    each frame cropped to its box and resized to ``shape`` = (width, height), with the audio
    of the same frames."""
    from skimage import img_as_ubyte

    from .images import resize_frame
    from .probe import has_audio
    from .video import VideoReader
    from .video_writer import VideoWriter

    with VideoReader(path) as reader:
        fps = reader.fps
        audio = has_audio(path)
        writers = {}
        try:
            last = max(track.end for _, track, _ in clips)
            for index, frame in enumerate(reader.frames(0, last + 1)):
                for output, track, box in clips:
                    if index == track.start:
                        writers[output] = VideoWriter(
                            output,
                            fps,
                            audio_from=path if audio else None,
                            audio_seconds=track.frames / fps,
                            audio_start=track.start / fps,
                        )
                    if track.start <= index <= track.end:
                        small = resize_frame(crop(frame, box), (shape[1], shape[0]))
                        writers[output].append(img_as_ubyte(small))
                    if index == track.end:
                        writers.pop(output).close()
                if progress:
                    progress(1)
        finally:
            for writer in writers.values():
                writer.abort()
    return fps


def main(prog, description, argv=None):
    args = parser(prog, description).parse_args(argv)
    shape = image_shape(args.image_shape)
    if args.increase < 0 or args.min_frames < 0 or not 0 <= args.iou_with_initial < 1:
        raise UsageError(
            "--increase and --min_frames must be at least 0, --iou_with_initial in [0, 1)"
        )
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise UsageError(f"--output {args.output} is a file; give a folder for the clips")
    from .. import extras
    from .faces import LABEL

    extras.check("mtcnn", "faces", "finding faces (crop.py)", LABEL)  # before TensorFlow
    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    from .video import VideoReader

    with VideoReader(args.input) as reader:
        size, total = reader.size, reader.num_frames
    cli.import_tensorflow()
    from tqdm import tqdm

    tracker = Tracker(args.iou_with_initial, args.min_frames)
    with tqdm(total=total, unit="frame", desc="faces", file=sys.stderr, dynamic_ncols=True) as bar:
        tracks, count = find_tracks(args.input, tracker, bar.update)
    if not tracks:
        raise InputError(
            f"no face stays in place for more than --min_frames {args.min_frames} frames in "
            f"'{args.input}' ({count} frames); nothing written. Lower --min_frames or "
            f"--iou_with_initial, or check that the video shows a face"
        )
    stem = os.path.splitext(os.path.basename(args.input))[0]
    clips = [
        (os.path.join(args.output, f"{stem}_{i:03d}.mp4"), t, grow(t.union, size, args.increase))
        for i, t in enumerate(tracks)
    ]
    with tqdm(total=count, unit="frame", desc="clips", file=sys.stderr, dynamic_ncols=True) as bar:
        fps = write_clips(args.input, clips, shape, bar.update)
    for output, track, (x, y, w, h) in clips:
        print(
            f"{output}: frames {track.start}-{track.end} ({track.frames} frames, "
            f"{track.start / fps:.2f}-{(track.end + 1) / fps:.2f} s), box {x},{y},{w},{h} "
            f"-> {shape[0]}x{shape[1]}"
        )
    return 0
