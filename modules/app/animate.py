"""The command line of run.py, test.py and testlite.py: the same flags and the same pipeline;
each script only says where its three models come from."""

import argparse
import dataclasses
import os
import sys
import textwrap
import time
import warnings

from ..errors import UsageError
from ..export.contract import PRECISIONS, built_models
from . import cli, framing, modes, motion_flags
from .boxes import parse_box
from .pipeline import DEFAULT_BATCH_SIZE

DEFAULT_SOURCE = os.path.join("example", "source.png")
DEFAULT_DRIVING = os.path.join("example", "driving.mp4")
# A video's timestamps decide its frame count (imageio repeats frames to keep the frame rate),
# so ten frames 1000 s apart read as 250,000; 100,000 frames is over an hour at 25 fps.
DEFAULT_MAX_FRAMES = 100_000
# Frames per model call: 64 is already past any speed-up (docs/limits.md); far larger batches
# end in an allocation failure deep in TensorFlow or LiteRT.
MAX_BATCH_SIZE = 64


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
    motion_flags.add_input_flag(inputs)
    inputs.add_argument(
        "--frames", type=int, default=None, metavar="N", help="animate only the first N frames"
    )
    inputs.add_argument(
        "--max_frames",
        type=int,
        default=DEFAULT_MAX_FRAMES,
        metavar="N",
        help="animate at most N frames, whatever the driving video's timestamps say, with a "
        f"warning when it has more (default: {DEFAULT_MAX_FRAMES})",
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
    motion_flags.add_output_flag(output)
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


@dataclasses.dataclass(frozen=True)
class Request:
    """One animation the scripts were asked for, as checked values with the defaults filled
    in; made once after parsing, and read (never the argparse namespace) from then on."""

    model: str
    source_image: str
    driving_video: str | None  # None with driving_motion
    driving_motion: str | None
    save_motion: str | None
    output: str
    relative: bool
    adapt_scale: bool
    best_frame: int | None
    find_best_frame: bool
    batch_size: int
    frames: int | None
    side_by_side: bool
    audio: bool
    overwrite: bool
    strict: bool
    crop: bool
    paste_back: bool
    multi_face: bool
    source_box: tuple | None
    driving_box: tuple | None

    @classmethod
    def of(cls, args, **resolved):
        """The request of parsed flags ``args``, with ``resolved`` values in place of theirs."""
        values = {field.name: getattr(args, field.name) for field in dataclasses.fields(cls)}
        return cls(**{**values, **resolved})

    def settings(self, framing=None):
        """The pipeline's settings (modules/app/pipeline.py)."""
        from .pipeline import Settings

        return Settings(
            relative=self.relative,
            adapt_scale=self.adapt_scale,
            best_frame=self.best_frame,
            find_best_frame=self.find_best_frame,
            batch_size=self.batch_size,
            frames=self.frames,
            side_by_side=self.side_by_side,
            audio=self.audio,
            overwrite=self.overwrite,
            strict=self.strict,
            framing=framing,
            save_motion=self.save_motion,
        )


def check(args, opened=None):
    """Flags that do not go together, and inputs that are missing, before any model loads.
    Returns (the Request, the driving video probed and opened once as a VideoReader, which
    the caller closes, or the loaded motion template, and the expected number of frames or
    None). ``opened``: a VideoReader of ``--driving_video`` opened already, used instead."""
    from .images import check_image
    from .integrity import DecodeCheck
    from .video import VideoReader

    modes.reject_mode_flags(args)
    if args.best_frame is not None and args.find_best_frame:
        raise UsageError(
            "--best_frame and --find_best_frame both choose the starting frame; give one of them"
        )
    for flag in ("best_frame", "batch_size", "frames", "max_frames"):
        value = getattr(args, flag)
        smallest = 0 if flag == "best_frame" else 1
        if value is not None and value < smallest:
            raise UsageError(f"--{flag} must be at least {smallest}, got {value}")
    check_batch_size(args)
    if args.frames is not None and args.best_frame is not None and args.best_frame >= args.frames:
        raise UsageError(
            f"--best_frame {args.best_frame} is not among the first --frames "
            f"{args.frames} frames (they count from 0)"
        )
    if args.adapt_scale and not args.relative:
        warnings.warn(
            "--adapt_scale only changes relative motion; add --relative for it to have an effect"
        )
    motion_flags.check_flags(args)
    inputs = {}
    for flag, default in (("source_image", DEFAULT_SOURCE), ("driving_video", DEFAULT_DRIVING)):
        inputs[flag] = getattr(args, flag)
        if flag == "driving_video" and args.driving_motion is not None:
            continue
        if inputs[flag] is None:
            if not os.path.exists(cli.home(default)):  # the installed scripts: no example/
                raise UsageError(
                    f"no --{flag} given, and no {default} in {cli.home()}: give --{flag} PATH"
                )
            inputs[flag] = cli.home(default)
    for flag in ("source_box", "driving_box"):
        if getattr(args, flag) is not None:
            inputs[flag] = parse_box(getattr(args, flag), f"--{flag}")
    request = Request.of(args, output=args.output or "result.mp4", **inputs)
    check_image(request.source_image)  # header only: a large photo is decoded once, later
    if request.driving_motion is not None:
        request, template = motion_flags.load(request, args.max_frames)
        check_outputs(request)
        framing.check_flags(request, None)
        return request, template, request.frames
    reader = opened or VideoReader(request.driving_video)
    try:
        total = reader.num_frames
        given = request.frames
        request = dataclasses.replace(
            request, frames=capped_frames(request, args.max_frames, total)
        )
        if request.strict:  # a damaged video is an error: say so before TensorFlow loads
            DecodeCheck(reader.path, request.frames, reader.fps).check(strict=True)
        if request.best_frame is not None and total is not None and request.best_frame >= total:
            raise UsageError(
                f"--best_frame {request.best_frame} is past the end of "
                f"'{request.driving_video}' (it declares {total} frames; frames count from 0)"
            )
        check_outputs(request)
        framing.check_flags(request, reader.size)
    except BaseException:
        reader.close()
        raise
    total = min(total, request.frames or total) if total else given
    return request, reader, total


def check_outputs(request):
    """UsageError when an output path is an input; InputError when it cannot be written."""
    from .video_writer import check_output

    inputs = ("source_image", "driving_video", "driving_motion")
    for output, name in ((request.output, "output"), (request.save_motion, "save_motion")):
        for flag in inputs:
            given = getattr(request, flag)
            if output and given and os.path.exists(output) and os.path.samefile(output, given):
                if (name, flag) != ("save_motion", "driving_motion"):  # read whole already
                    raise UsageError(f"--{name} {output} is the --{flag}; choose another path")
    check_output(request.output, request.overwrite)


def check_batch_size(args):
    """UsageError when --batch_size is over MAX_BATCH_SIZE."""
    if args.batch_size is not None and args.batch_size > MAX_BATCH_SIZE:
        raise UsageError(f"--batch_size must be at most {MAX_BATCH_SIZE}, got {args.batch_size}")


def capped_frames(request, limit, total):
    """--frames, capped at --max_frames ``limit`` when the driving video declares more
    frames (``total``) or does not say how many it has; warns when the cap cuts it short."""
    if request.frames is not None and request.frames <= limit:
        return request.frames
    if total is not None and total > limit:
        warnings.warn(
            f"'{request.driving_video}' has {total} frames by its timestamps; only the first "
            f"{limit} are animated (--max_frames {limit}; --max_frames N to change it)"
        )
    if total is None or total > limit:
        return limit
    return request.frames


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
    check_batch_size(args)
    if args.mode:
        motion_flags.check_flags(args)
        return modes.main(prog, args, backend.load, modes.config_of(args))
    began = time.perf_counter()
    request, driving, total = check(args)
    with driving:
        backend.check(args)
        if args.cpu and backend.tensorflow:
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        if backend.tensorflow:
            cli.import_tensorflow()
        from tqdm import tqdm

        from .pipeline import Animation

        faces = framing.from_args(request, driving)  # finds the faces before any model loads
        with cli.quiet():
            models = backend.load(args)
        if request.driving_motion is not None:  # before the progress bar starts
            driving.check_fits(models)
        start = time.perf_counter()
        with tqdm(total=total, unit="frame", desc=prog, file=sys.stderr, dynamic_ncols=True) as bar:
            animation = Animation(models, request.settings(faces))
            count, _ = animation.run(
                request.source_image, driving, request.output, progress=bar.update
            )
    if animation.damage:  # after the progress bar, on a line of its own
        warnings.warn(f"{animation.damage}; the animation used what decoded (--strict: stop)")
    seconds = time.perf_counter() - start
    whole = time.perf_counter() - began
    cli.say(
        f"{count} frames in {seconds:.1f} s ({count / seconds:.2f} frames/s; "
        f"{whole:.1f} s in all) -> {request.output}"
    )
    return 0


def model_folder(folder, name, kind, build_hint):
    """``folder`` (build.py's folder of model ``name``), else a UsageError that lists the
    models built beside it and names the build command: ``build_hint`` when model ``name``
    has a config, else the same command for a model NAME (a misspelled name has none)."""
    if os.path.isdir(folder):
        return folder
    built = built_models(os.path.dirname(folder))
    where = os.path.dirname(folder) + (f" (built: {', '.join(built)})" if built else "")
    try:
        cli.config_path(name)
    except UsageError:  # build_hint reads 'python build.py --model NAME ...'
        build_hint = build_hint.replace(f" --model {name}", " --model NAME", 1)
    raise UsageError(f"no {kind} for model '{name}' in {where}; build them with: {build_hint}")


def add_mode_config_flag(parser):
    """test.py's and testlite.py's --mode_config: their models come built, so a config only
    gives the dataset modes' params. Not --config, which in run.py and build.py is the config
    the models are built from; ``dest`` stays ``config`` for modes.py."""
    parser.add_argument(
        "--mode_config",
        dest="config",
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
