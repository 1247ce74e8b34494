"""Animates a source image in real time with the motion of a camera, a network stream or a
video file played as a camera (docs/live.md).

    python live.py --source_image me.jpg --camera /dev/video0 --relative --serve 8000
"""

import os

from modules.app import cli, commands

# config/, checkpoint/, saved_models/, tflite/ ... of this checkout, from any working directory.
cli.set_home(os.path.dirname(os.path.abspath(__file__)))
main = commands.live_main

if __name__ == "__main__":
    cli.exit_fast(main)
