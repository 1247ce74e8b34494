"""Animates a source image with a driving video using the SavedModels that build.py wrote
(saved_models/NAME/).

    python test.py --model vox --relative --adapt_scale
"""

import sys

from modules.app import animate, cli
from modules.export.contract import build_hint, saved_model_dir


def add_flags(parser):
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="--mode only: the config whose animate_params, reconstruction_params, "
        "visualizer_params and dataset_params apply (default: config/NAME-256.yaml)",
    )
    parser.add_argument(
        "--saved_models",
        default=cli.SAVED_MODELS_DIR,
        metavar="DIR",
        help="where build.py wrote the SavedModels (default: saved_models/)",
    )


def load_models(args):
    from modules.app.sources import SavedModels

    hint = build_hint(args.model)
    folder = saved_model_dir(args.saved_models, args.model)
    return SavedModels(animate.model_folder(folder, args.model, "SavedModels", hint), hint)


@cli.main_guard
def main(argv=None):
    return animate.main("test.py", __doc__.split("\n\n")[0], add_flags, load_models, argv)


if __name__ == "__main__":
    sys.exit(main())
