"""``--ray [ADDRESS]``: the same app as a Ray Serve deployment of ``--replicas N``, on a
local cluster or the one at ADDRESS. Each replica loads the models and runs one worker;
they share the job store (``--jobs``, a folder every replica reaches), so any replica
answers for any job, and a job whose replica died runs again on another."""

import time

from ...errors import UsageError
from .. import distributed


def deployment():
    """The Ray Serve deployment class (built when Ray is imported: --ray only)."""
    from ray import serve

    @serve.deployment(ray_actor_options={"num_cpus": 1}, graceful_shutdown_timeout_s=5)
    @serve.ingress()
    class Animations:
        def __init__(self, args):
            from .command import load_models
            from .metrics import Metrics
            from .store import JobStore
            from .worker import Worker

            self.args = args
            store = JobStore(args.jobs)
            self.worker = Worker(store, load_models(args), Metrics(store.depth), args.max_frames)
            self.worker.start()

        def __serve_build_asgi_app__(self):
            from .app import create_app

            return create_app(self.args, self.worker)

        def __del__(self):
            self.worker.stop()

    return Animations


def serve_on_ray(args):
    """Deploys the app and serves until a signal ends it (then the cluster it started)."""
    import os

    try:
        import ray
        from ray import serve
    except ImportError:
        raise UsageError(
            "--ray needs Ray Serve: python -m pip install 'fomm-tf[serve,ray]' "
            "(in a checkout: bash install.sh)"
        ) from None
    args.jobs = os.path.abspath(args.jobs)  # the replicas' working directory is not ours
    distributed.start_ray(args.ray, max(args.replicas, os.cpu_count() or 1))
    try:
        with distributed.keeping_signal_handlers():
            serve.start(http_options={"host": args.host, "port": args.port})
            app = deployment().options(num_replicas=args.replicas).bind(args)
            serve.run(app, name="fomm", route_prefix="/", blocking=False)
        print(
            f"fomm-serve: {args.model} ({args.backend}) on Ray Serve, {args.replicas} "
            f"replica(s), http://{args.host}:{args.port} (jobs in {args.jobs})",
            flush=True,
        )
        while True:
            time.sleep(1)
    finally:
        if args.ray != "local":  # a cluster of its own goes whole with ray.shutdown()
            serve.delete("fomm")
        ray.shutdown()
