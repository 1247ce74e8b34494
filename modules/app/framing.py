"""Where the faces are: ``--crop``, ``--paste_back``, ``--multi_face``, ``--source_box`` and
``--driving_box`` of run.py, test.py and testlite.py.

The boxes are chosen once, before any model loads: the source image's from its faces (or
``--source_box``), the driving video's from the faces of its frames (or ``--driving_box``).
The pipeline then asks a Framing for the source crops and its driving box, and (with
``--paste_back``) the full-size frame with every animated crop pasted back.
"""

import contextlib
import dataclasses

from ..errors import InputError, UsageError
from .boxes import check_inside, crop, grow, join

# crop-video.py's --increase default: the face box grows by this much of its size per side.
INCREASE = 0.1
# The driving video's box is the union of its face boxes on at most this many frames, spread
# evenly over the frames that are animated (each detection takes about 0.1-0.5 s).
DRIVING_SAMPLES = 16


def add_flags(parser):
    parser.add_argument(
        "--crop",
        action="store_true",
        help="crop the source image and the driving video around the face first, as "
        "crop-video.py would",
    )
    parser.add_argument(
        "--paste_back",
        action="store_true",
        help="write the source image at its full size with the animated face pasted back",
    )
    parser.add_argument(
        "--multi_face",
        action="store_true",
        help="with --crop --paste_back: animate every face of the source image",
    )
    parser.add_argument(
        "--source_box",
        metavar="x,y,w,h",
        help="crop the source image to this box (pixels) instead of finding the face",
    )
    parser.add_argument(
        "--driving_box",
        metavar="x,y,w,h",
        help="crop every driving frame to this box (pixels) instead of finding the face",
    )


@dataclasses.dataclass
class Framing:
    """The boxes of one run: ``source_boxes`` (one per animated face; None: the whole image),
    ``driving_box`` (None: whole frames), and whether results are pasted back."""

    source_boxes: list = None
    driving_box: tuple = None
    paste_back: bool = False

    def sources(self, image):
        """The source crops to animate (uint8), one per face."""
        from .faces import rgb

        image = rgb(image)
        return [crop(image, box) for box in self.source_boxes] if self.source_boxes else [image]

    def compose(self, image, predictions):
        """uint8 frames: the full source with each face's prediction ([B, H, W, 3] in
        [0, 1], one per source box) pasted back."""
        import numpy as np

        from .faces import rgb
        from .paste import paste

        frames = []
        for i in range(len(predictions[0])):
            frame = rgb(image)
            for box, prediction in zip(self.source_boxes, predictions):
                frame = paste(frame, np.clip(prediction[i], 0, 1), box)
            frames.append(frame)
        return frames


def check_flags(args, driving_size):
    """Flags that do not go together, and boxes that do not fit their input (before
    TensorFlow loads). ``args``: a request whose boxes are parsed (``parse_box``);
    ``driving_size``: the driving video's (width, height)."""
    from .images import image_header, load_image

    if args.source_box:
        header = image_header(args.source_image)
        shape = load_image(args.source_image).shape if header is None else header[1::-1]
        check_inside(args.source_box, shape[1::-1], "--source_box", args.source_image)
    if args.driving_box:
        check_inside(args.driving_box, driving_size, "--driving_box", args.driving_video)
    if args.paste_back and not (args.crop or args.source_box):
        raise UsageError(
            "--paste_back pastes a face crop back: add --crop (find the face) or "
            "--source_box x,y,w,h"
        )
    if args.multi_face and not (args.paste_back and args.crop):
        raise UsageError("--multi_face animates every face found: add --crop and --paste_back")
    if args.multi_face and args.source_box:
        raise UsageError("--multi_face finds every face itself: leave out --source_box")
    if args.paste_back and args.side_by_side:
        raise UsageError("--side_by_side and --paste_back make different videos; give one")
    finds_driving = not (args.driving_box or getattr(args, "driving_motion", None))
    if args.crop and (not args.source_box or finds_driving):
        from .faces import check_detector

        check_detector("--crop")


def from_args(args, driving=None):
    """The Framing the flags (or a request) ask for (None when no flag asks for one); finds
    faces where needed, in the driving frames that are animated (``--frames``), read from
    ``driving`` (the run's VideoReader) when given; with a progress bar on stderr, since the
    search takes seconds (MTCNN's start and every sampled frame)."""
    import sys

    from tqdm import tqdm

    from .faces import rgb
    from .images import load_image
    from .video import VideoReader

    if not (args.crop or args.source_box or args.driving_box):
        return None
    driving_box = args.driving_box
    # A motion template's keypoints come from frames that were cropped already.
    scan_driving = driving_box is None and args.crop and not getattr(args, "driving_motion", None)
    if args.source_box and not scan_driving:  # no face to find: no bar
        return Framing([args.source_box], driving_box, args.paste_back)
    with contextlib.ExitStack() as stack:
        reader = driving
        if scan_driving and reader is None:
            reader = stack.enter_context(VideoReader(args.driving_video))
        elif not scan_driving:
            reader = None
        scanned = _frames_to_scan(reader, args.frames) if reader else 0
        total = None if scanned is None else (0 if args.source_box else 1) + scanned
        # "faces", as crop.py's bar: the source image, then each driving frame read
        bar = stack.enter_context(
            tqdm(total=total, unit="image", desc="faces", file=sys.stderr, dynamic_ncols=True)
        )
        if args.source_box:  # checked against the image by check_flags
            source_boxes = [args.source_box]
        else:
            image = rgb(load_image(args.source_image))
            source_boxes = source_faces(image, args.source_image, args.multi_face)
            bar.update(1)
        if reader is not None:
            driving_box = driving_face(reader, args.frames, bar.update)
    return Framing(source_boxes, driving_box, args.paste_back)


def _frames_to_scan(reader, frames):
    """How many frames ``driving_face`` reads (None when the video does not say)."""
    if reader.num_frames and frames:
        return min(reader.num_frames, frames)
    return reader.num_frames or frames


def source_faces(image, path, every=False):
    """The grown boxes of the largest face (``every``: of all faces) of the source image."""
    from .faces import detect_faces

    faces = detect_faces(image)
    if not faces:
        raise InputError(
            f"no face found in the source image '{path}'; give its box with "
            f"--source_box x,y,w,h (pixels)"
        )
    size = (image.shape[1], image.shape[0])
    return [grow(f.box, size, INCREASE) for f in (faces if every else faces[:1])]


def driving_face(reader, frames=None, progress=None):
    """One box for the whole driving clip, as crop-video.py makes one per clip: the union of
    the face's boxes over the clip (here on up to DRIVING_SAMPLES frames spread over it),
    grown by INCREASE and made square. The face is the largest one of the first sampled frame
    that has one, followed by overlap on the later samples. ``progress(1)`` follows every
    frame read."""
    from .faces import best_match, detect_faces

    total = frames or reader.num_frames or DRIVING_SAMPLES
    step = max(1, total // DRIVING_SAMPLES)
    union = current = None
    for index, frame in enumerate(reader.frames(0, frames)):
        if index % step == 0:
            faces = detect_faces(frame)
            face = faces[0] if current is None and faces else best_match(faces, current or (0,) * 4)
            if face is not None:
                current = face.box
                union = face.box if union is None else join(union, face.box)
        if progress:
            progress(1)
    if union is None:
        raise InputError(
            f"no face found in the driving video '{reader.path}'; give its box with "
            f"--driving_box x,y,w,h (pixels)"
        )
    return grow(union, reader.size, INCREASE)
