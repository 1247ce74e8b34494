"""Animates a source image with a driving video using the Keras models, built from the
config and loaded from the original's checkpoint.

    python run.py --model vox --relative --adapt_scale
"""

import os

from modules.app import cli, commands

# config/, checkpoint/, saved_models/, tflite/ ... of this checkout, from any working directory.
cli.set_home(os.path.dirname(os.path.abspath(__file__)))
main = commands.run_main

if __name__ == "__main__":
    cli.exit_fast(main)
