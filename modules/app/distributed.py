"""Runs the jobs of a dataset mode in this process or on a Ray cluster, with the same results.

Each Ray worker is an actor that loads its models once and then takes one job (video or pair)
at a time; results (encoded strip and visualization, losses) come back to this process, which
writes every output, so only the inputs (dataset and models) need to be reachable from every
machine. A job that fails is reported by name and the others go on; a worker that dies takes
only its current job with it.
"""

import contextlib
import dataclasses
import functools
import os
import resource
import signal
import sys
import threading
import time

from ..errors import FommError, UsageError
from . import interrupt, scratch

# The package ('fomm_tf' installed, 'modules' in a checkout) and the folder that holds it.
PACKAGE = __package__.split(".")[0]
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(PACKAGE_DIR)
# Ray's object store on a local cluster: results pass through it one at a time.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}


@dataclasses.dataclass
class Outcome:
    failures: list  # [(job name, message)]
    frames: int
    seconds: float
    workers: int  # 0: this process
    worker_peak_mib: list  # peak RSS of each process that ran models


def describe(error):
    """One line for a failed job: a FommError's message, else the exception's kind and text."""
    if isinstance(error, FommError):
        return str(error)
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def deliver(report, job, result, error, failures):
    """``report``s a job's result (or its error); a result that cannot be written (``report``
    raises: a full disk, a name the file system refuses) is that job's failure, not the
    run's. Returns the frames delivered."""
    if error is None:
        try:
            report(job, result, None)
            return result.frames
        except Exception as failed:  # any write failure is this job's only
            error = describe_write(failed)
    failures.append((job.name, error))
    report(job, None, error)
    return 0


def describe_write(error):
    if isinstance(error, OSError) and error.strerror:
        where = f" {error.filename}" if error.filename else ""
        return f"cannot write its output{where}: {error.strerror}"
    return describe(error)


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_serial(jobs, make_worker, report, started=lambda: None):
    """Runs ``jobs`` here with one ``make_worker()``; ``started()`` once the models are loaded,
    ``report(job, result, error)`` after each job."""
    from . import cli

    with cli.quiet():
        worker = make_worker()
    started()
    start, frames, failures = time.perf_counter(), 0, []
    for job in jobs:
        try:
            result, error = worker.run(job), None
        except Exception as failed:  # any failure of one video is that video's, not the run's
            result, error = None, describe(failed)
        frames += deliver(report, job, result, error, failures)
    return Outcome(failures, frames, time.perf_counter() - start, 0, [peak_mib()])


class RayWorker:
    """A Ray actor: loads the models once (``start``), then runs jobs."""

    def __init__(self, make_worker):
        self.make_worker = make_worker
        self.worker = None

    def start(self):
        """None when the models are loaded, else the error's line."""
        from . import cli

        try:
            cli.import_tensorflow()
            with cli.quiet():
                self.worker = self.make_worker()
        except Exception as error:  # reported by the driver as the run's error
            return describe(error)
        return None

    def run(self, job):
        try:
            return self.worker.run(job), None
        except Exception as error:  # reported by name, the other jobs go on
            return None, describe(error)

    def peak_mib(self):
        return peak_mib()

    def pid(self):
        return os.getpid()


def start_ray(address, workers):
    """Starts a local cluster (``address`` 'local') or joins one."""
    try:
        import ray
    except ImportError:
        from ..extras import message

        raise UsageError(message("ray", "ray", "--ray", "Ray")) from None
    import logging

    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    with keeping_signal_handlers():
        _init(ray, address, workers, options)


@contextlib.contextmanager
def keeping_signal_handlers():
    """ray.init replaces SIGTERM's handler (an exit 1 with a stack dump from its C++ core)
    and SIGHUP's; the scripts' own (modules/app/interrupt.py) come back after it, so a signal
    ends a Ray run as any other: 143 / 129 / 130 and one line."""
    previous = {signum: signal.getsignal(signum) for signum in interrupt.SIGNALS}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for signum, handler in previous.items():
                if handler is not None:  # None: set outside Python, not ours to restore
                    signal.signal(signum, handler)


def _init(ray, address, workers, options):
    if address == "local":
        env = {"PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]), **QUIET_ENV}
        ray.init(
            num_cpus=workers or os.cpu_count() or 1,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            runtime_env={"env_vars": env},
            **options,
        )
    else:
        try:
            # The code travels with the job; models and dataset are read by path on each node.
            ray.init(
                address=address,
                runtime_env={"py_modules": [PACKAGE_DIR], "env_vars": QUIET_ENV},
                **options,
            )
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise UsageError(f"cannot join the Ray cluster at {address}: {error}") from None


def default_workers(use_gpus):
    """One worker per GPU of the cluster, else one per machine: TensorFlow and LiteRT already
    use every core of a machine, so a second worker there only adds its memory (measured:
    docs/dataset-modes.md)."""
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0)) if use_gpus else 0
    return gpus or max(1, sum(1 for node in ray.nodes() if node.get("Alive")))


def run_ray(
    jobs, make_worker, report, started=lambda: None, address="local", workers=None, gpus=True
):
    """Runs ``jobs`` on Ray workers; the same ``report`` calls as ``run_serial``. With
    ``gpus`` and GPUs in the cluster, each worker takes one."""
    import ray

    pids = []
    try:
        start_ray(address, workers)
        count = workers or default_workers(gpus)
        _send_code_of(*getattr(make_worker, "args", ()))
        per_worker = 1 if gpus and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        # SPREAD: the workers go to different machines first
        actor = ray.remote(num_cpus=1, num_gpus=per_worker, scheduling_strategy="SPREAD")(RayWorker)
        actors = [actor.remote(make_worker) for _ in range(count)]
        pids.extend(ray.get([a.pid.remote() for a in actors]))
        errors = [e for e in ray.get([a.start.remote() for a in actors]) if e]
        if errors:
            raise UsageError(f"a Ray worker cannot load the models: {errors[0]}")
        started()
        start, frames, failures = time.perf_counter(), 0, []
        queue, pending, idle = list(jobs), {}, list(actors)
        while queue or pending:
            while idle and queue:
                a, job = idle.pop(), queue.pop(0)
                pending[a.run.remote(job)] = (a, job)
            if not pending:  # every worker died
                for job in queue:
                    failures.append((job.name, "no Ray worker left to run it"))
                    report(job, None, failures[-1][1])
                break
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            a, job = pending.pop(ref)
            try:
                result, error = ray.get(ref)
                idle.append(a)
            except ray.exceptions.RayError as lost:  # the worker died (memory, node lost)
                result, error = None, f"the Ray worker died ({type(lost).__name__})"
            frames += deliver(report, job, result, error, failures)
        seconds = time.perf_counter() - start
        peaks = ray.get([a.peak_mib.remote() for a in idle])
        return Outcome(failures, frames, seconds, count, peaks)
    except KeyboardInterrupt as error:
        # Ray's wait and get raise a signal's exception again as a plain KeyboardInterrupt:
        # the signal's own gives the run its exit code (143, 129) and line
        signum = interrupt.received()
        if signum is None or isinstance(error, interrupt.Interrupted):
            raise
        raise interrupt.Interrupted(signum) from None
    finally:
        ray.shutdown()
        if address == "local":
            # workers stopped mid-job (a signal, an error) leave their scratch folders
            scratch.clean_stale(set(pids), seconds=5)


def _send_code_of(*values):
    """The scripts' model loaders live in run.py / test.py / testlite.py (or a benchmark),
    which a remote worker cannot import: their code travels with the worker instead
    (``__main__``'s always does)."""
    import ray.cloudpickle

    for value in values:
        while isinstance(value, functools.partial):
            value = value.func
        name = getattr(value, "__module__", None) or ""
        path = os.path.abspath(getattr(sys.modules.get(name), "__file__", None) or "/")
        if name not in ("", "__main__") and not name.startswith(PACKAGE + "."):
            if path.startswith(ROOT + os.sep):
                ray.cloudpickle.register_pickle_by_value(sys.modules[name])
