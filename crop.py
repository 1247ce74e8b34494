"""Finds the faces of a video and writes each one, cropped and scaled, as its own clip with
its audio.

    python crop.py --input VIDEO --output DIR
"""

import os

from modules.app import cli, commands

# config/, checkpoint/, saved_models/, tflite/ ... of this checkout, from any working directory.
cli.set_home(os.path.dirname(os.path.abspath(__file__)))
main = commands.crop_main

if __name__ == "__main__":
    cli.exit_fast(main)
