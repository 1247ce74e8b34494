"""``--mode reconstruction`` and ``--mode animate`` of run.py, test.py and testlite.py: the
original's run.py modes over a whole dataset, here or on a Ray cluster.

Everything is checked before any model loads (config, dataset, pairs, flags); then each video
(or pair) is a job. A job that fails is reported by name and the others go on; the command then
lists the failures and exits with code 1.
"""

import csv
import functools
import io
import os
import sys

from ..atomic import write_file
from ..errors import UsageError
from . import cli

LOSSES_CSV = "losses.csv"  # OUT/reconstruction/losses.csv: name, frames, l1 of each video
NOT_IN_MODES = ("source_image", "driving_video", "best_frame", "frames")
NOT_IN_MODES_SWITCHES = ("find_best_frame", "audio", "side_by_side")
ONLY_IN_MODES = ("dataset", "pairs", "ray", "workers")


def add_flags(p):
    p.add_argument(
        "--mode",
        choices=("reconstruction", "animate"),
        help="the original's dataset modes: reconstruct every video of --dataset from its "
        "frame 0, or animate the pairs of --pairs (default: one animation)",
    )
    p.add_argument(
        "--dataset",
        metavar="DIR",
        help="dataset folder, the original's layout: DIR/test/ when DIR/train/ exists, else "
        "DIR (default: the config's dataset_params.root_dir)",
    )
    p.add_argument(
        "--pairs",
        metavar="CSV",
        help="animate: source,driving pairs (default: the config's dataset_params.pairs_list)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on Ray: a local cluster, or join the cluster at ADDRESS (e.g. head:6379)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="Ray workers, each with its own models (default: one per GPU of the cluster, else "
        "one per machine)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip the videos (pairs) whose outputs are already in --output",
    )


def check(args, config):
    """Flags that do not fit the dataset modes; the jobs, resolved before any model loads."""
    from .dataset import (
        config_relative,
        dataset_videos,
        load_params,
        random_pairs,
        read_pairs,
    )
    from .evaluate import Job
    from .output_names import pair_name, video_name

    for flag in NOT_IN_MODES + NOT_IN_MODES_SWITCHES:
        if getattr(args, flag):
            raise UsageError(f"--{flag} does not apply to --mode {args.mode}")
    if args.mode == "reconstruction" and (args.relative or args.adapt_scale or args.pairs):
        flag = "--pairs" if args.pairs else "--relative and --adapt_scale"
        raise UsageError(f"{flag} apply to --mode animate only")
    for flag, value in (("batch_size", args.batch_size), ("workers", args.workers)):
        if value is not None and value < 1:
            raise UsageError(f"--{flag} must be at least 1, got {value}")
    if args.workers and not args.ray:
        raise UsageError("--workers counts Ray workers; add --ray (or --ray ADDRESS)")
    params = load_params(config)
    root = args.dataset or (params.root_dir and config_relative(params.root_dir, config))
    if not root:
        raise UsageError(f"config {config} has no dataset_params.root_dir; pass --dataset DIR")
    folder, videos = dataset_videos(root)
    folder = os.path.abspath(folder)
    extensions = (".png", params.reconstruction_format, params.animate_format)
    if args.mode == "reconstruction":
        if params.num_videos is not None:
            # reconstruction.py stops at `it > num_videos`: num_videos + 1 videos
            videos = videos[: params.num_videos + 1]
        jobs = [
            Job(video_name(v, extensions), os.path.join(folder, v), os.path.join(folder, v))
            for v in videos
        ]
    else:
        pairs_file = args.pairs or (
            params.pairs_list and config_relative(params.pairs_list, config)
        )
        pairs = (
            read_pairs(pairs_file, videos) if pairs_file else random_pairs(videos, params.num_pairs)
        )
        pairs = pairs[: params.num_pairs]
        jobs = [
            Job(
                pair_name(s, d, videos, extensions),
                os.path.join(folder, s),
                os.path.join(folder, d),
            )
            for s, d in pairs
        ]
        if not jobs:
            raise UsageError(f"no pairs to animate (animate_params.num_pairs in {config} is 0)")
    seen = {}
    for job in jobs:
        other = seen.setdefault(job.name, job)
        if other is not job:
            if (other.source, other.driving) == (job.source, job.driving):
                raise UsageError(
                    "the pairs list names the same pair twice; each pair has one output"
                )
            raise UsageError(
                f"two jobs would share the output name {job.name}; rename one of their videos"
            )
    return params, jobs


def normalization(args, params):
    """animate_params.normalization_params, unless --relative / --adapt_scale are given."""
    if args.relative or args.adapt_scale:
        return {
            "use_relative_movement": args.relative,
            "use_relative_jacobian": args.relative,
            "adapt_movement_scale": args.adapt_scale,
        }
    return params.normalization


def make_worker(load_models, args, mode, visualizer, video_format, norm, batch_size):
    """The models and the Worker, built where the jobs run (this process or a Ray worker)."""
    from .evaluate import Worker

    return Worker(load_models(args), mode, visualizer, video_format, norm, batch_size)


def read_losses(path):
    """{name: (frames, l1)} from an earlier run's losses.csv (empty when there is none)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return {r["name"]: (int(r["frames"]), float(r["l1"])) for r in csv.DictReader(f)}
    except (OSError, KeyError, ValueError, csv.Error):
        return {}


def write_losses(path, losses):
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(["name", "frames", "l1"])
    for name in sorted(losses):
        out.writerow([name, losses[name][0], repr(losses[name][1])])
    write_file(path, text.getvalue())


def main(prog, args, load_models, config):
    """Runs ``args.mode`` over the dataset; returns the exit code (1 when a job failed)."""
    import numpy as np
    from tqdm import tqdm

    from .distributed import run_ray, run_serial
    from .evaluate import FOLDERS, is_done, write_result
    from .video_writer import check_output

    params, jobs = check(args, config)
    # Workers may run elsewhere (another folder, another machine): they get absolute paths,
    # resolved here, never defaults of their own.
    args.config = config
    if getattr(args, "checkpoint", "") is None:
        args.checkpoint = cli.checkpoint_path(args.model)
    for name in ("config", "checkpoint", "saved_models", "tflite"):
        if getattr(args, name, None):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    output = args.output or os.path.join("log", args.model)
    video_format = (
        params.reconstruction_format if args.mode == "reconstruction" else params.animate_format
    )
    check_output("visualization" + video_format)
    folder = os.path.join(output, FOLDERS[args.mode])
    losses_path = os.path.join(folder, LOSSES_CSV)
    losses = read_losses(losses_path) if args.resume else {}
    todo = [
        job
        for job in jobs
        if not args.resume
        or not is_done(job, args.mode, output, video_format)
        or (args.mode == "reconstruction" and job.name not in losses)
    ]
    skipped = {job.name for job in jobs} - {job.name for job in todo}
    losses = {name: losses[name] for name in skipped if name in losses}
    if len(todo) < len(jobs):
        print(f"--resume: {len(jobs) - len(todo)} of {len(jobs)} already done in {folder}")
    try:
        os.makedirs(os.path.join(folder, "png"), exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot write to --output {output}: {error.strerror}") from None
    norm = normalization(args, params) if args.mode == "animate" else None
    worker = functools.partial(
        make_worker, load_models, args, args.mode, params.visualizer, video_format, norm,
        args.batch_size,
    )  # fmt: skip
    frames = [0]
    bar = tqdm(total=len(todo), unit="video", desc=prog, file=sys.stderr, dynamic_ncols=True)

    def report(job, result, error):
        if error is not None:
            bar.write(f"failed: {job.name}: {error}", file=sys.stderr)
        else:
            write_result(result, args.mode, output, video_format)
            if args.mode == "reconstruction":
                losses[job.name] = (result.frames, float(np.mean(result.losses)))
                write_losses(losses_path, losses)
            frames[0] += result.frames
        seconds = bar.format_dict["elapsed"] or 1e-9
        bar.set_postfix_str(f"{frames[0] / seconds:.2f} frames/s", refresh=False)
        bar.update(1)

    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    if not args.ray:
        cli.import_tensorflow()
    with bar:
        if args.ray:
            outcome = run_ray(todo, worker, report, bar.reset, args.ray, args.workers, not args.cpu)
        else:
            outcome = run_serial(todo, worker, report, bar.reset)
    if args.mode == "reconstruction" and losses:
        counts = np.array([losses[n][0] for n in losses], np.float64)
        means = np.array([losses[n][1] for n in losses], np.float64)
        # the mean over every frame of every video, as reconstruction.py prints it
        print(f"Reconstruction loss: {str(np.float32((counts * means).sum() / counts.sum()))}")
    where = (
        f"{outcome.workers} Ray worker{'s' if outcome.workers > 1 else ''}"
        if outcome.workers
        else "1 process"
    )
    rate = outcome.frames / outcome.seconds if outcome.seconds else 0.0
    print(
        f"{len(todo) - len(outcome.failures)} of {len(todo)} {FOLDERS[args.mode]} jobs, "
        f"{outcome.frames} frames in {outcome.seconds:.1f} s ({rate:.2f} frames/s, {where}, "
        f"peak memory per worker {max(outcome.worker_peak_mib or [0]):.0f} MiB) -> {folder}"
    )
    if outcome.failures:
        print(f"{len(outcome.failures)} failed:", file=sys.stderr)
        for name, message in outcome.failures:
            print(f"  {name}: {message}", file=sys.stderr)
        return 1
    return 0


def reject_mode_flags(args):
    """The dataset modes' flags given without --mode."""
    for flag in ONLY_IN_MODES + ("resume",):
        if getattr(args, flag, None):
            raise UsageError(f"--{flag} needs --mode reconstruction or --mode animate")


def config_of(args):
    return args.config or cli.config_path(args.model)
