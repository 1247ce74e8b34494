"""Animates a source image with a driving video using the SavedModels that build.py wrote
(saved_models/NAME/).

    python test.py --model vox --relative --adapt_scale
"""

import os

from modules.app import cli, commands

# config/, checkpoint/, saved_models/, tflite/ ... of this checkout, from any working directory.
cli.set_home(os.path.dirname(os.path.abspath(__file__)))
main = commands.test_main

if __name__ == "__main__":
    cli.exit_fast(main)
