"""What a client may ask of a job: the form fields of ``POST /v1/animations`` (the scripts'
flags of the same names) and its driving video or motion template, checked, and turned into
the scripts' own checked request (modules/app/animate.py ``check``), so a job and a script
run the same pipeline on the same settings."""

from ...errors import UsageError
from .. import motion

# Form field -> type; the scripts' flags of the same names.
FIELDS = {
    "relative": bool,
    "adapt_scale": bool,
    "crop": bool,
    "paste_back": bool,
    "audio": bool,
    "find_best_frame": bool,
    "strict": bool,
    "best_frame": int,
    "frames": int,
}
# --max_frames while a header is checked: larger than any header a check lets through.
UNCAPPED = 10**12
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def options(form):
    """The checked options of the form fields ``form`` ({name: text}); UsageError for an
    unknown field or a value of the wrong kind."""
    result = {}
    for name, text in form.items():
        kind = FIELDS.get(name)
        if kind is None:
            known = ", ".join(sorted(FIELDS))
            raise UsageError(f"unknown form field '{name[:40]}' (known: {known})")
        text = text.strip().lower()
        if kind is bool:
            if text not in TRUE + FALSE:
                raise UsageError(f"form field '{name}' must be true or false, got '{text[:20]}'")
            result[name] = text in TRUE
        else:
            if not text.isdigit() or len(text) > 9:
                raise UsageError(f"form field '{name}' must be a whole number, got '{text[:20]}'")
            result[name] = int(text)
    return result


def argv(opts, source, driving, output, max_frames):
    """The scripts' command line for options ``opts`` and the job's files (``driving``: a
    video, or a motion template, named .npz)."""
    flag = "--driving_motion" if motion.is_template(driving) else "--driving_video"
    args = ["--source_image", source, flag, driving, "--output", output]
    args += ["--max_frames", str(max_frames)]
    for name, value in opts.items():
        if value is True:
            args.append(f"--{name}")
        elif value is not False:
            args += [f"--{name}", str(value)]
    return args


def checked(opts, source, driving, output, max_frames, opened=None):
    """(Request, opened VideoReader or loaded motion.Motion, frame count or None), as the
    scripts check their flags and inputs: the image's header, the video's probe (allow-lists,
    frame size), ``--strict``'s integrity check, the template's safe read, and the face
    flags. The caller closes the reader. ``opened``: the video's reader, opened already."""
    from .. import animate

    if motion.is_template(driving):
        # The scripts refuse a template longer than --max_frames even with --frames N; here
        # frames=N up to the limit animates its first N, as with a video (``validate``).
        max_frames = UNCAPPED
    parser = animate.parser("fomm-serve", "")
    args = parser.parse_args(argv(opts, source, driving, output, max_frames))
    return animate.check(args, opened)


def validate(opts, source, driving, output, max_frames, models=None, keep=None):
    """Every check a job's inputs get before it is queued; returns the number of frames it
    will animate (None: the video does not say). An InputError or UsageError says what is
    wrong; a video that declares, or a template that holds, more than ``max_frames`` frames
    is one (``frames=N`` up to the limit animates the first N instead), and so is a template
    made for other ``models`` than the server's. ``keep``: given the video's open reader once
    every check has passed, instead of closing it (handover.py)."""
    from ..images import load_image

    if opts.get("frames", 0) > max_frames:
        raise UsageError(f"frames={opts['frames']} is over this server's limit of {max_frames}")
    load_image(source)  # decoded now: a damaged image is refused here, not in the queue
    uncapped = max_frames if opts.get("frames") else UNCAPPED  # the header is judged below
    request, reader, total = checked(opts, source, driving, output, uncapped)
    template = motion.is_template(reader)
    kept = keep is not None and not template
    try:
        if template and models is not None:
            reader.check_fits(models)
        if total is not None and total > max_frames:
            if template:
                what, shorter = f"the motion template has {total} frames", "template"
            else:
                what, shorter = f"the driving video has {total} frames by its timestamps", "video"
            raise UsageError(
                f"{what}; this server animates at most {max_frames} (--max_frames): send a "
                f"shorter {shorter}, or the field frames=N"
            )
    except BaseException:
        reader.close()
        raise
    if kept:
        keep(reader)
    else:
        reader.close()
    return total if total is not None else request.frames
