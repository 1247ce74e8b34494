"""The command line of run.py, test.py and testlite.py: the same flags and the same pipeline;
each script only says where its three models come from."""

import argparse
import os
import sys
import textwrap
import time
import warnings

from ..errors import UsageError
from ..export.contract import PRECISIONS
from . import cli, framing, modes
from .pipeline import DEFAULT_BATCH_SIZE

DEFAULT_SOURCE = os.path.join("example", "source.png")
DEFAULT_DRIVING = os.path.join("example", "driving.mp4")


EXAMPLES = """examples:
  {prog} --source_image me.jpg --driving_video talk.mp4 --crop --relative --adapt_scale --audio
  {prog} --model vox --relative --adapt_scale --output frames/ --frames 50"""


def parser(prog, description, backend=None):
    """The flags every script takes (demo.py's names, with the older TF port's as aliases),
    grouped as ``--help`` shows them; ``backend`` adds its model flags."""
    p = cli.ArgumentParser(
        prog=prog,
        description=textwrap.fill(description, 79),
        epilog=EXAMPLES.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="vox", help="model NAME (default: vox)")
    if backend is not None:
        backend.add_flags(p)
    inputs = p.add_argument_group("input")
    inputs.add_argument(
        "--source_image",
        default=None,
        metavar="PATH",
        help=f"source image (default: {DEFAULT_SOURCE})",
    )
    inputs.add_argument(
        "--driving_video",
        default=None,
        metavar="PATH",
        help=f"driving video (default: {DEFAULT_DRIVING})",
    )
    inputs.add_argument(
        "--frames", type=int, default=None, metavar="N", help="animate only the first N frames"
    )
    inputs.add_argument(
        "--strict",
        action="store_true",
        help="stop with an error when the driving video is damaged (default: warn and go on)",
    )
    motion = p.add_argument_group("motion")
    motion.add_argument(
        "--relative",
        action="store_true",
        help="relative keypoint motion (and jacobians), as demo.py --relative",
    )
    motion.add_argument(
        "--adapt_scale",
        "--adapt",
        dest="adapt_scale",
        action="store_true",
        help="scale the motion by the ratio of the keypoints' convex hull areas",
    )
    motion.add_argument(
        "--best_frame",
        type=int,
        default=None,
        metavar="N",
        help="start relative motion from driving frame N (animate backward and "
        "forward from it, as demo.py)",
    )
    motion.add_argument(
        "--find_best_frame",
        action="store_true",
        help="use the driving frame whose keypoints best match the source's",
    )
    framing.add_flags(p.add_argument_group("faces"))
    output = p.add_argument_group("output")
    output.add_argument(
        "--output",
        "--result_video",
        dest="output",
        default=None,
        metavar="PATH",
        help="output video; the extension picks the container (.mp4 .gif .webm "
        ".mov .mkv .avi); a path ending in / (or a folder) gets PNG frames "
        "(default: result.mp4); with --mode, the output folder (default: log/NAME)",
    )
    output.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the numbered PNG frames already in the --output folder (other files, "
        "higher-numbered frames included, stay); without it such a folder is refused",
    )
    output.add_argument(
        "--audio", action="store_true", help="copy the driving video's audio track into the output"
    )
    output.add_argument(
        "--side_by_side",
        action="store_true",
        help="write source | driving | result with the keypoints drawn",
    )
    performance = p.add_argument_group("performance")
    performance.add_argument(
        "--batch_size",
        "--batchsize",
        dest="batch_size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"frames per model call (default: {DEFAULT_BATCH_SIZE})",
    )
    if backend is None or backend.tensorflow:
        performance.add_argument(
            "--cpu", action="store_true", help="run on the CPU even when a GPU is available"
        )
    else:
        p.set_defaults(cpu=True)  # LiteRT runs on the CPU
    modes.add_flags(p.add_argument_group("dataset modes (the original's run.py --mode)"))
    return p


def check(args):
    """Flags that do not go together, and inputs that are missing, before any model loads.
    Returns the expected number of frames (None if unknown)."""
    from .images import check_image
    from .integrity import DecodeCheck
    from .video import VideoReader, check_output

    modes.reject_mode_flags(args)
    args.output = args.output or "result.mp4"
    if args.best_frame is not None and args.find_best_frame:
        raise UsageError(
            "--best_frame and --find_best_frame both choose the starting frame; give one of them"
        )
    for flag in ("best_frame", "batch_size", "frames"):
        value = getattr(args, flag)
        smallest = 0 if flag == "best_frame" else 1
        if value is not None and value < smallest:
            raise UsageError(f"--{flag} must be at least {smallest}, got {value}")
    if args.frames is not None and args.best_frame is not None and args.best_frame >= args.frames:
        raise UsageError(
            f"--best_frame {args.best_frame} is not among the first --frames "
            f"{args.frames} frames (they count from 0)"
        )
    if args.adapt_scale and not args.relative:
        warnings.warn(
            "--adapt_scale only changes relative motion; add --relative for it to have an effect"
        )
    args.source_image = args.source_image or cli.home(DEFAULT_SOURCE)
    args.driving_video = args.driving_video or cli.home(DEFAULT_DRIVING)
    check_image(args.source_image)  # header only: a large photo is decoded once, later
    with VideoReader(args.driving_video) as reader:
        total = reader.num_frames
    if args.strict:  # a damaged video is an error: say so before TensorFlow loads
        DecodeCheck(args.driving_video, args.frames, reader.fps).check(strict=True)
    if args.best_frame is not None and total is not None and args.best_frame >= total:
        raise UsageError(
            f"--best_frame {args.best_frame} is past the end of '{args.driving_video}' "
            f"(it declares {total} frames; frames count from 0)"
        )
    for flag in ("source_image", "driving_video"):
        if os.path.exists(args.output) and os.path.samefile(args.output, getattr(args, flag)):
            raise UsageError(f"--output {args.output} is the --{flag}; choose another output path")
    check_output(args.output, args.overwrite)
    framing.check_flags(args, reader.size)
    return min(total, args.frames or total) if total else args.frames


def main(backend, argv=None, prog=None):
    """Parses ``argv``, checks flags, inputs, output and (``backend.check``) the model files
    before TensorFlow is imported, loads the models with ``backend.load`` and animates.
    A backend without ``tensorflow`` (testlite.py: LiteRT needs none) leaves TensorFlow
    unimported unless a step needs it (face detection, --find_best_frame), which saves
    about 3 s of start-up. Otherwise it is imported here, right after the checks: importing
    it later, in ``backend.load``, measured 0.25-0.4 s slower."""
    warnings.formatwarning = lambda message, *rest, **kw: f"warning: {message}\n"
    prog = prog or backend.name
    p = parser(prog, backend.doc, backend)
    args = p.parse_args(argv)
    if args.mode:
        return modes.main(prog, args, backend.load, modes.config_of(args))
    began = time.perf_counter()
    total = check(args)
    backend.check(args)
    if args.cpu and backend.tensorflow:
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    if backend.tensorflow:
        cli.import_tensorflow()
    from tqdm import tqdm

    from .pipeline import Animation, Settings

    faces = framing.from_args(args)  # finds the faces before any model loads
    with cli.quiet():
        models = backend.load(args)
    settings = Settings(
        relative=args.relative,
        adapt_scale=args.adapt_scale,
        best_frame=args.best_frame,
        find_best_frame=args.find_best_frame,
        batch_size=args.batch_size,
        frames=args.frames,
        side_by_side=args.side_by_side,
        audio=args.audio,
        overwrite=args.overwrite,
        strict=args.strict,
        framing=faces,
    )
    start = time.perf_counter()
    with tqdm(total=total, unit="frame", desc=prog, file=sys.stderr, dynamic_ncols=True) as bar:
        animation = Animation(models, settings)
        count, _ = animation.run(
            args.source_image, args.driving_video, args.output, progress=bar.update
        )
    if animation.damage:  # after the progress bar, on a line of its own
        warnings.warn(f"{animation.damage}; the animation used what decoded (--strict: stop)")
    seconds = time.perf_counter() - start
    whole = time.perf_counter() - began
    cli.say(
        f"{count} frames in {seconds:.1f} s ({count / seconds:.2f} frames/s; "
        f"{whole:.1f} s in all) -> {args.output}"
    )
    return 0


def model_folder(folder, name, kind, build_hint):
    """``folder`` (build.py's folder of model ``name``), else a UsageError naming the build
    command."""
    if not os.path.isdir(folder):
        raise UsageError(
            f"no {kind} for model '{name}' in {os.path.dirname(folder)}; "
            f"build them with: {build_hint}"
        )
    return folder


def add_mode_config_flag(parser):
    """test.py's and testlite.py's --config: their models come built, so a config only
    matters for the dataset modes (run.py's --config also builds the models)."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="--mode only: the config whose animate_params, reconstruction_params, "
        "visualizer_params and dataset_params apply (default: config/NAME-256.yaml)",
    )


def add_precision_flag(parser):
    """run.py's and test.py's --precision (benchmarks/bench.py measures both modes)."""
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="bfloat16: the generator's per-frame convolutions in bfloat16, faster on CPUs "
        "with AVX512_BF16 or AMX (default: float32, the exact port)",
    )
