"""``--save_motion`` and ``--driving_motion`` of run.py, test.py and testlite.py: their flags
and their checks before any model loads (the templates themselves: modules/app/motion.py)."""

import dataclasses
import os

from ..errors import UsageError
from . import motion
from .cli import check_folder

# Flags that need the driving video's frames, and why a template does without them.
NOT_WITH_TEMPLATES = {
    "best_frame": "it starts from its own initial keypoints",
    "find_best_frame": "it starts from its own initial keypoints",
    "driving_box": "its keypoints were found in the cropped frames already",
    "side_by_side": "it has no driving frames to show",
}


def add_input_flag(group):
    group.add_argument(
        "--driving_motion",
        default=None,
        metavar="FILE.npz",
        help="animate from a motion template (--save_motion's) instead of a driving video",
    )


def add_output_flag(group, help=None):
    group.add_argument(
        "--save_motion",
        default=None,
        metavar="FILE.npz",
        help=help
        or "also save the driving keypoints (and with --audio the audio) as a motion "
        "template, to replay with --driving_motion",
    )


def check_flags(args):
    """UsageError for flags that do not go with --driving_motion or --save_motion, and for a
    --save_motion path that is not an .npz file in a folder that exists or can be made."""
    given = [flag for flag in ("driving_motion", "save_motion") if getattr(args, flag)]
    if args.mode and given:
        raise UsageError(f"--{given[0]} does not apply to --mode {args.mode}")
    if args.driving_motion is not None:
        if args.driving_video is not None:
            raise UsageError("--driving_motion replaces --driving_video; give one of them")
        for flag, why in NOT_WITH_TEMPLATES.items():
            if getattr(args, flag) not in (None, False):
                raise UsageError(f"--{flag} does not apply to --driving_motion: {why}")
    check_save_path(args.save_motion)


def check_save_path(path):
    """UsageError or InputError unless ``path`` (--save_motion's, or None) is an .npz file
    in a folder that exists or can be made."""
    if path is None:
        return
    if not os.fspath(path).lower().endswith(".npz"):
        raise UsageError(f"--save_motion {path}: a motion template is an .npz file")
    if os.path.isdir(path):
        raise UsageError(f"--save_motion {path} is a folder; give a file path ending in .npz")
    check_folder(os.path.dirname(os.path.abspath(path)), path)


def load(request, max_frames):
    """(the request with ``frames`` resolved, the template of --driving_motion), read and
    checked whole, its audio too when --audio asks for it."""
    template = motion.load(request.driving_motion, max_frames)
    if request.audio and template.audio is not None:
        with template.audio_file():  # ffmpeg reads it as Matroska audio, or one line now
            pass
    frames = len(template) if request.frames is None else min(request.frames, len(template))
    return dataclasses.replace(request, frames=frames), template
