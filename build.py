"""Builds the SavedModels and TF Lite models (and ONNX / TF.js / web models) of a checkpoint.

python build.py --model vox
"""

import os

from modules.app import cli, commands

# config/, checkpoint/, saved_models/, tflite/ ... of this checkout, from any working directory.
cli.set_home(os.path.dirname(os.path.abspath(__file__)))
main = commands.build_main

if __name__ == "__main__":
    cli.exit_fast(main)
