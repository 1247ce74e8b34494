"""live.py: the flags, the checks made before any model loads, and the session's start and
end (what is written whatever ends it)."""

import argparse
import os
import sys
import textwrap
import warnings

from ...errors import FommError, InputError, UsageError
from ...export.contract import QUANTIZATIONS, build_hint, saved_model_dir, tflite_dir
from .. import cli, interrupt, motion_flags
from ..animate import DEFAULT_SOURCE

DESCRIPTION = (
    "Animates a source image in real time with the motion of a camera: a V4L2 device, a "
    "network stream (udp://, rtsp://, http://, tcp://, ...) or a video file played at its own "
    "frame rate. The newest camera frame is always the one animated; frames that arrive "
    "while the model runs are dropped and counted, never queued."
)
EXAMPLES = """examples:
  {prog} --source_image me.jpg --camera /dev/video0 --relative --adapt_scale --serve 8000
  {prog} --source_image me.jpg --camera /dev/video0 --relative --stream_to udp://127.0.0.1:5000
  {prog} --camera talk.mp4 --relative --output live.mp4 --stats stats.json"""
BACKENDS = ("tflite", "savedmodel", "keras")


def parser(prog):
    p = cli.ArgumentParser(
        prog=prog,
        description=textwrap.fill(DESCRIPTION, 79),
        epilog=EXAMPLES.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="vox", help="model NAME (default: vox)")
    model = p.add_argument_group("model")
    model.add_argument(
        "--backend",
        choices=BACKENDS,
        default="tflite",
        help="tflite: build.py's TF Lite models on LiteRT (testlite.py); savedmodel: its "
        "SavedModels (test.py); keras: the checkpoint (run.py) (default: tflite)",
    )
    model.add_argument(
        "--quantize",
        choices=("float32", *QUANTIZATIONS),
        help="tflite: which build (default: dynamic when tflite/NAME-dynamic/ exists, "
        "else float32)",
    )
    model.add_argument("--threads", type=int, metavar="N", help="tflite: LiteRT threads")
    model.add_argument("--tflite", default=None, metavar="DIR", help="default: tflite/")
    model.add_argument("--saved_models", default=None, metavar="DIR", help="default: saved_models/")
    model.add_argument("--config", metavar="PATH", help="keras: default config/NAME-256.yaml")
    model.add_argument("--checkpoint", metavar="PATH", help="keras: default checkpoint/NAME-cpk")
    inputs = p.add_argument_group("input")
    inputs.add_argument(
        "--source_image", metavar="PATH", help=f"source image (default: {DEFAULT_SOURCE})"
    )
    inputs.add_argument(
        "--camera",
        default="/dev/video0",
        metavar="SPEC",
        help="a V4L2 device, an ffmpeg input URL (udp:// rtp:// rtsp:// rtmp:// srt:// tcp:// "
        "http:// https://) or a video file (default: /dev/video0)",
    )
    inputs.add_argument(
        "--camera_timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a camera that sends no frame for this long has stopped (default: 10)",
    )
    inputs.add_argument("--frames", type=int, metavar="N", help="stop after N camera frames")
    motion = p.add_argument_group("motion")
    motion.add_argument(
        "--relative",
        action="store_true",
        help="relative motion from the reference frame: the first camera frame, or the one "
        "after POST /reset or the key r",
    )
    motion.add_argument("--adapt_scale", "--adapt", dest="adapt_scale", action="store_true")
    motion.add_argument(
        "--crop",
        action="store_true",
        help="crop the source image around its face, and the camera frames around the face "
        "of the first camera frame",
    )
    outputs = p.add_argument_group("output (any combination)")
    outputs.add_argument(
        "--serve",
        type=int,
        metavar="PORT",
        help="a page on http://127.0.0.1:PORT/ with the source, the camera and the result; "
        "/result.mjpg, /camera.mjpg, GET /stats, POST /reset",
    )
    outputs.add_argument(
        "--stream_to",
        metavar="URL",
        help="the result as H.264 in MPEG-TS (udp:// tcp:// srt://) or FLV (rtmp://), e.g. "
        "udp://127.0.0.1:5000 for OBS (docs/live.md)",
    )
    outputs.add_argument(
        "--output",
        metavar="PATH",
        help="record the results: a video (.mp4 .mkv ...), or a folder (ending in /) of PNG frames",
    )
    motion_flags.add_output_flag(
        outputs,
        "also save the driving keypoints of every result as a motion template, to replay "
        "with the scripts' --driving_motion (with --relative it refuses resets)",
    )
    outputs.add_argument(
        "--stats",
        metavar="FILE",
        help="write JSON: frames in, out and dropped, fps, latency p50/p95, stage times, "
        "camera_frames",
    )
    return p


def check(args):
    """One-line errors for bad flags and inputs, before any model loads."""
    from ..images import check_image
    from ..video_writer import check_output
    from .capture import input_args
    from .outputs import check_stream_url

    if args.frames is not None and args.frames < 1:
        raise UsageError(f"--frames must be at least 1, got {args.frames}")
    if not args.camera_timeout > 0:
        raise UsageError(f"--camera_timeout must be positive, got {args.camera_timeout}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    if args.serve is not None and not 0 <= args.serve <= 65535:
        raise UsageError(f"--serve takes a port from 0 (any free one) to 65535, got {args.serve}")
    if args.backend != "tflite" and (args.quantize not in (None, "float32") or args.threads):
        raise UsageError(f"--quantize and --threads are for --backend tflite, not {args.backend}")
    if args.adapt_scale and not args.relative:
        warnings.warn("--adapt_scale only changes relative motion; add --relative")
    if args.source_image is None:
        if not os.path.exists(cli.home(DEFAULT_SOURCE)):
            raise UsageError(f"no --source_image given, and no {DEFAULT_SOURCE}: give one")
        args.source_image = cli.home(DEFAULT_SOURCE)
    check_image(args.source_image)
    input_args(args.camera)
    if args.stream_to:
        check_stream_url(args.stream_to)
    if args.output:
        check_output(args.output)
    if args.stats:
        cli.check_folder(os.path.dirname(os.path.abspath(args.stats)), args.stats)
    motion_flags.check_save_path(args.save_motion)
    written = [flag for flag in ("output", "stats", "save_motion") if getattr(args, flag)]
    for i, flag in enumerate(written):
        for other in written[i + 1 :]:
            if os.path.abspath(getattr(args, flag)) == os.path.abspath(getattr(args, other)):
                raise UsageError(f"--{flag} and --{other} name the same file")


def backend_of(args):
    """(name for the stats, a function that loads the models, needs TensorFlow); the model
    files are checked here, before TensorFlow loads."""
    from ..backends import Keras, Lite, SavedModel

    if args.backend == "keras":
        config = args.config or cli.config_path(args.model)
        checkpoint = args.checkpoint or cli.checkpoint_path(args.model)
        from ...convert.checkpoint import check_checkpoint_file

        check_checkpoint_file(checkpoint)
        return "keras", lambda: Keras.models(config, checkpoint), True
    if args.backend == "savedmodel":
        folder = saved_model_dir(args.saved_models or cli.saved_models_dir(), args.model)
        hint = build_hint(args.model)
        SavedModel.verify(folder_or_hint(folder, args.model, hint), hint)
        return "savedmodel", lambda: SavedModel.models(folder, hint, verified=True), True
    root = args.tflite or cli.tflite_dir()
    quantize = args.quantize
    if quantize is None:
        dynamic = os.path.isdir(tflite_dir(root, args.model, "dynamic"))
        quantize = "dynamic" if dynamic else "float32"
    mode = None if quantize == "float32" else quantize
    folder, hint = tflite_dir(root, args.model, mode), build_hint(args.model, mode)
    Lite.verify(folder_or_hint(folder, args.model, hint), hint)
    name = "tflite" if mode is None else f"tflite-{mode}"
    return name, lambda: Lite.models(folder, hint, args.threads, True, verified=True), False


def folder_or_hint(folder, model, hint):
    if not os.path.isdir(folder):
        raise UsageError(f"no models for '{model}' in {folder}; build them with: {hint}")
    return folder


def source_of(args):
    """The source image as the session animates it: cropped around its face with --crop."""
    from ..faces import rgb
    from ..framing import source_faces
    from ..images import load_image

    image = load_image(args.source_image)
    if not args.crop:
        return image
    from ..boxes import crop

    image = rgb(image)
    return crop(image, source_faces(image, args.source_image)[0])


def driving_box_of(camera):
    """--crop: the box around the face of the first camera frame (crop-video.py's growth)."""
    from ..framing import driving_face
    from ..pipeline import Frames

    frames = Frames([camera.first.pixels], lambda frame, _: frame)
    frames.path = camera.spec
    frames.num_frames = 1
    return driving_face(frames, 1)


def say(line):
    print(f"live: {line}", file=sys.stderr, flush=True)


def main(argv=None, prog="live.py"):
    warnings.formatwarning = lambda message, *rest, **kw: f"warning: {message}\n"
    args = parser(prog).parse_args(argv)
    check(args)
    from .capture import Camera
    from .server import Server

    camera = Camera(args.camera, args.camera_timeout, args.frames)
    server = Server(args.serve, None) if args.serve is not None else None  # the port, now
    try:
        name, load, tensorflow = backend_of(args)
        if tensorflow or args.crop:
            cli.import_tensorflow()
        source = source_of(args)
        with cli.quiet():
            models = load()
        return run(args, models, name, source, camera, server)
    finally:
        if server is not None:
            server.close()


def run(args, models, backend, source, camera, server):
    """Opens the camera and the outputs, runs the session; whatever ends it (the camera's
    end, --frames, an error, a signal), the recording is finished, the motion template and
    the stats written."""
    from ..motion import Recorder
    from .keys import keys
    from .outputs import Recording, Stream, recording_fps
    from .session import Session
    from .stats import Stats

    stats = Stats(backend, camera)
    session = Session(models, source, camera, stats, args.relative, args.adapt_scale)
    if args.save_motion:
        session.motion = Recorder()
    session.warm_up()
    say(f"opening camera {args.camera}")
    camera.open()
    recording = None
    try:
        size = camera.size
        say(f"camera {size[0]}x{size[1]}" + (f" at {camera.fps:g} fps" if camera.fps else ""))
        if args.crop:
            if camera.wait_first() is None:
                raise InputError(f"camera '{camera.spec}' ended before its first frame")
            session.driving_box = driving_box_of(camera)
        height, width = models.frame_shape
        if args.stream_to:
            session.stream = Stream(args.stream_to, (width, height))
        if args.output:
            recording = session.recording = Recording(args.output, recording_fps(camera))
        if server is not None:
            server.http.live = session
            server.start()
            say(f"serving http://127.0.0.1:{server.port}/")
        ended = None
        try:
            with keys(session):
                session.run()
        except (FommError, KeyboardInterrupt) as error:
            ended = error
        finish(args, session, stats, recording, ended)
    except BaseException:
        if recording is not None:
            recording.abort()
        raise
    finally:
        camera.close()
        if session.stream is not None:
            session.stream.close()
    return 0


def finish(args, session, stats, recording, ended):
    """Puts the recording in place, writes the motion template and the stats, and says how
    the session went; then re-raises what ended it (an error: exit 2; a signal: 128 + its
    number)."""
    written = recording.finish() if recording is not None else 0
    saved = save_motion(args.save_motion, session)
    if args.stats:
        stats.write(args.stats)
    s = stats.summary(False)
    outputs = [args.output if written else None, args.save_motion if saved else None, args.stats]
    outputs = [path for path in outputs if path]
    fps = f"{s['fps']} frames/s, " if s["fps"] else ""
    latency = s["latency_ms"]
    line = (
        f"{s['frames_in']} camera frames, {s['frames_out']} animated, {s['dropped']} dropped; "
        f"{fps}latency p50 {latency['p50']} ms, p95 {latency['p95']} ms"
        + (f" -> {', '.join(outputs)}" if outputs else "")
    )
    if isinstance(ended, KeyboardInterrupt):
        signum = getattr(ended, "signum", None) or 2
        import signal

        say(f"stopped by {signal.Signals(signum).name}: {line}")
        interrupt.clear()  # the recording is in place: not the guard's "nothing was written"
        raise SystemExit(128 + signum)
    if ended is not None:
        say(line)
        raise ended
    cli.say(line)


def save_motion(path, session):
    """--save_motion: writes the template of the session's results (atomically), at the
    recording's frame rate; False when there is none to write."""
    if path is None:
        return False
    if not session.motion.batches:
        warnings.warn(f"no frame was animated; no motion template written to {path}")
        return False
    from .outputs import recording_fps

    session.motion.save(path, recording_fps(session.camera), session.models)
    return True
