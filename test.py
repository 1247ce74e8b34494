"""Animates a source image with a driving video using the SavedModels that build.py wrote
(saved_models/NAME/).

    python test.py --model vox --relative --adapt_scale
"""

from modules.app import animate, cli
from modules.export.contract import build_hint, build_name, saved_model_dir


def add_flags(parser):
    animate.add_mode_config_flag(parser)
    parser.add_argument(
        "--saved_models",
        default=cli.SAVED_MODELS_DIR,
        metavar="DIR",
        help="where build.py wrote the SavedModels (default: saved_models/)",
    )
    animate.add_precision_flag(parser)


def precision(args):
    return None if args.precision == "float32" else args.precision


def hint(args):
    return build_hint(args.model, precision=precision(args))


def model_folder(args):
    """saved_models/NAME/, or saved_models/NAME-bfloat16/ for --precision bfloat16."""
    folder = saved_model_dir(args.saved_models, build_name(args.model, precision(args)))
    return animate.model_folder(folder, args.model, "SavedModels", hint(args))


def check_models(args):
    from modules.app.sources import saved_model_paths

    saved_model_paths(model_folder(args), hint(args))


def load_models(args):
    from modules.app.sources import SavedModels
    from modules.runtime import skip_graph_optimizer

    skip_graph_optimizer()
    return SavedModels(model_folder(args), hint(args))


@cli.main_guard
def main(argv=None):
    doc = __doc__.split("\n\n")[0]
    return animate.main("test.py", doc, add_flags, load_models, argv, check_models)


if __name__ == "__main__":
    cli.exit_fast(main)
