"""Serves animations over HTTP with the models loaded once (FastAPI and uvicorn; the API
reference is at /docs, the guide in docs/serve.md).

    python serve.py --model vox --quantize dynamic --port 8000
"""

import os

from modules.app import cli, commands

# config/, checkpoint/, saved_models/, tflite/ ... of this checkout, from any working directory.
cli.set_home(os.path.dirname(os.path.abspath(__file__)))
main = commands.serve_main

if __name__ == "__main__":
    cli.exit_fast(main)
