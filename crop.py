"""Finds the faces of a video and writes each one, cropped and scaled, as its own clip with
its audio: the job of the original's crop-video.py, which only printed ffmpeg commands.

    python crop.py --input VIDEO --output DIR
"""

from modules.app import cli, clips


@cli.main_guard
def main(argv=None):
    return clips.main("crop.py", __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    cli.exit_fast(main)
