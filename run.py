"""Animates a source image with a driving video using the Keras models, built from the
config and loaded from the original's checkpoint.

    python run.py --model vox --relative --adapt_scale
"""

from modules.app import animate, cli


def add_flags(parser):
    parser.add_argument(
        "--config",
        "--config_path",
        dest="config",
        metavar="PATH",
        help="config file (default: config/NAME-256.yaml)",
    )
    parser.add_argument(
        "--checkpoint",
        "--checkpoint_path",
        dest="checkpoint",
        metavar="PATH",
        help="checkpoint (default: checkpoint/NAME-cpk.pth.tar or NAME.pth.tar)",
    )
    parser.add_argument(
        "--loadwithtorch",
        action="store_true",
        help="read the checkpoint with torch.load instead of the built-in reader",
    )

    animate.add_precision_flag(parser)


def check_models(args):
    """Checks the config and checkpoint, then starts reading the checkpoint in a thread:
    it overlaps the TensorFlow import that follows (about 0.5 s of a short run)."""
    from concurrent.futures import ThreadPoolExecutor

    from modules.convert.checkpoint import check_checkpoint_file, read_state_dicts
    from modules.convert.config import load_config

    load_config(args.config or cli.config_path(args.model))
    path = args.checkpoint or cli.checkpoint_path(args.model)
    check_checkpoint_file(path)
    if not args.loadwithtorch:
        reader = ThreadPoolExecutor(max_workers=1)
        args.state_dicts = reader.submit(read_state_dicts, path)
        reader.shutdown(wait=False)  # its one thread ends with the read


def load_models(args):
    from modules.convert.model import load_model
    from modules.runtime import skip_graph_optimizer

    skip_graph_optimizer()
    reading = getattr(args, "state_dicts", None)
    model = load_model(
        args.config or cli.config_path(args.model),
        args.checkpoint or cli.checkpoint_path(args.model),
        use_torch=args.loadwithtorch,
        precision=args.precision,
        state_dicts=reading.result() if reading else None,
    )
    model.trace_in_background()
    return model


@cli.main_guard
def main(argv=None):
    doc = __doc__.split("\n\n")[0]
    return animate.main("run.py", doc, add_flags, load_models, argv, check_models)


if __name__ == "__main__":
    cli.exit_fast(main)
