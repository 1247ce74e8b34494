"""Animates a source image with a driving video using the TF Lite models that build.py wrote
(tflite/NAME/, or tflite/NAME-float16/ and tflite/NAME-dynamic/ with --quantize), on LiteRT.

    python testlite.py --model vox --relative --adapt_scale
"""

import os

from modules.app import cli, commands

# config/, checkpoint/, saved_models/, tflite/ ... of this checkout, from any working directory.
cli.set_home(os.path.dirname(os.path.abspath(__file__)))
main = commands.testlite_main

if __name__ == "__main__":
    cli.exit_fast(main)
