"""Animates a source image with a driving video using the TF Lite models that build.py wrote
(tflite/NAME/, or tflite/NAME-float16/ and tflite/NAME-dynamic/ with --quantize), on the
LiteRT interpreter.

    python testlite.py --model vox --relative --adapt_scale
"""

from modules.app import animate, cli
from modules.export.contract import QUANTIZATIONS, build_hint, tflite_dir


def add_flags(parser):
    animate.add_mode_config_flag(parser)
    parser.add_argument(
        "--tflite",
        default=cli.TFLITE_DIR,
        metavar="DIR",
        help="where build.py wrote the TF Lite models (default: tflite/)",
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        help="use the quantized models of build.py --quantize MODE",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="interpreter threads (default: one per core)",
    )


def model_folder(args):
    folder = tflite_dir(args.tflite, args.model, args.quantize)
    hint = build_hint(args.model, args.quantize)
    return animate.model_folder(folder, args.model, "TF Lite models", hint)


def check_models(args):
    from modules.app.sources import tflite_paths

    tflite_paths(model_folder(args), build_hint(args.model, args.quantize))


def load_models(args):
    from modules.app.sources import LiteModels

    hint = build_hint(args.model, args.quantize)
    return LiteModels(model_folder(args), hint, num_threads=args.threads)


@cli.main_guard
def main(argv=None):
    doc = __doc__.split("\n\n")[0]
    return animate.main(
        "testlite.py", doc, add_flags, load_models, argv, check_models, tensorflow=False
    )


if __name__ == "__main__":
    cli.exit_fast(main)
