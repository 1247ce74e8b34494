"""Animates a source image with a driving video using the TF Lite models that build.py wrote
(tflite/NAME/, or tflite/NAME-float16/ and tflite/NAME-dynamic/ with --quantize), on LiteRT
(XNNPACK, its packed weights kept between runs: --weight_cache).

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
        help="LiteRT threads (default: one per core)",
    )
    parser.add_argument(
        "--weight_cache",
        metavar="DIR",
        help="keep XNNPACK's packed weights here between runs, about the models' size "
        "(default: $XDG_CACHE_HOME/fomm-tf/xnnpack, or ~/.cache/fomm-tf/xnnpack)",
    )
    parser.add_argument(
        "--no_weight_cache",
        action="store_true",
        help="pack the weights in memory on every run instead",
    )


def model_folder(args):
    folder = tflite_dir(args.tflite, args.model, args.quantize)
    hint = build_hint(args.model, args.quantize)
    return animate.model_folder(folder, args.model, "TF Lite models", hint)


def check_models(args):
    from modules.app.sources import tflite_paths

    tflite_paths(model_folder(args), build_hint(args.model, args.quantize))
    if args.weight_cache and not args.no_weight_cache:  # the default falls back to memory
        cli.check_folder(args.weight_cache, args.weight_cache)


def load_models(args):
    from modules.app.sources import LiteModels
    from modules.app.weight_cache import WeightCache

    hint = build_hint(args.model, args.quantize)
    cache = None if args.no_weight_cache else WeightCache(args.weight_cache)
    return LiteModels(model_folder(args), hint, num_threads=args.threads, weight_cache=cache)


@cli.main_guard
def main(argv=None):
    doc = __doc__.split("\n\n")[0]
    return animate.main(
        "testlite.py", doc, add_flags, load_models, argv, check_models, tensorflow=False
    )


if __name__ == "__main__":
    cli.exit_fast(main)
