"""serve.py / ``fomm-serve``: the flags, the models loaded once, and the server (uvicorn, or
Ray Serve with ``--ray``)."""

import argparse
import os
import sys

from ... import extras
from ...errors import UsageError
from .. import backends, cli

BACKENDS = {"tflite": backends.Lite, "savedmodel": backends.SavedModel, "keras": backends.Keras}
DESCRIPTION = (
    "Serves animations over HTTP with the models loaded once: POST a source image and a "
    "driving video (or a motion template) to /v1/animations, poll the job, fetch the video. "
    "The API reference is at /docs; see docs/serve.md."
)


def parser(prog, backend_name):
    p = cli.ArgumentParser(prog=prog, description=DESCRIPTION)
    p.add_argument("--model", default="vox", help="model NAME (default: vox)")
    p.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        default="tflite",
        help="the models of testlite.py (tflite, the default), test.py (savedmodel) or "
        "run.py (keras)",
    )
    BACKENDS[backend_name]().add_flags(p)
    server = p.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    server.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    server.add_argument(
        "--jobs", default="jobs", metavar="DIR", help="the job store (default: ./jobs)"
    )
    server.add_argument(
        "--token", help="require Authorization: Bearer TOKEN on every endpoint but /healthz"
    )
    server.add_argument("--cors", metavar="ORIGIN", help="allow this origin (default: no CORS)")
    limits = p.add_argument_group("limits")
    limits.add_argument(
        "--max_upload_mb", type=float, default=200, metavar="MB", help="(default: 200)"
    )
    limits.add_argument(
        "--max_frames",
        type=int,
        default=3000,
        metavar="N",
        help="longest driving video or motion template, in frames (default: 3000)",
    )
    limits.add_argument(
        "--queue",
        type=int,
        default=16,
        metavar="N",
        help="jobs queued or running before new ones get 429 (default: 16)",
    )
    scale = p.add_argument_group("scale out (Ray Serve)")
    scale.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="serve as a Ray Serve deployment, on a local cluster or the one at ADDRESS; "
        "--jobs must then be a folder every replica reaches",
    )
    scale.add_argument(
        "--replicas", type=int, default=1, metavar="N", help="Ray Serve replicas (default: 1)"
    )
    p.set_defaults(cpu=True)
    return p


def parse(argv, prog):
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--backend", choices=sorted(BACKENDS), default="tflite")
    known, _ = first.parse_known_args(argv)
    args = parser(prog, known.backend).parse_args(argv)
    for flag in ("max_frames", "queue", "replicas"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.max_upload_mb <= 0:
        raise UsageError(f"--max_upload_mb must be positive, got {args.max_upload_mb:g}")
    if args.replicas > 1 and not args.ray:
        raise UsageError("--replicas counts Ray Serve replicas; add --ray (or --ray ADDRESS)")
    cli.check_folder(args.jobs, args.jobs)
    return args


def load_models(args):
    """The backend's models, checked and loaded once (as the scripts load them)."""
    backend = BACKENDS[args.backend]()
    backend.check(args)
    if backend.tensorflow:
        cli.import_tensorflow()
    with cli.quiet():
        return backend.load(args)


def require_extras():
    """The serve extra's packages, before anything loads (modules/extras.py's one line)."""
    for module in ("fastapi", "prometheus_client", "python_multipart", "uvicorn"):
        extras.check(module, "serve", "serve.py")


def main(argv=None, prog="serve.py"):
    require_extras()
    args = parse(argv, prog)
    if args.ray:
        from .ray_deploy import serve_on_ray

        return serve_on_ray(args)
    import uvicorn

    from .app import create_app
    from .metrics import Metrics
    from .store import JobStore
    from .worker import Worker

    models = load_models(args)
    store = JobStore(args.jobs)
    worker = Worker(store, models, Metrics(store.depth), args.max_frames)
    app = create_app(args, worker)
    worker.start()
    print(
        f"{prog}: {args.model} ({args.backend}) on http://{args.host}:{args.port} "
        f"(API reference: /docs; jobs in {os.path.abspath(args.jobs)})",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    try:
        uvicorn.Server(config).run()
    finally:
        worker.stop()
    return 0
