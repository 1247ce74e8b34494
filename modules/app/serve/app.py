"""The HTTP API (FastAPI; its OpenAPI page at ``/docs`` is the reference):

- ``POST /v1/animations``: multipart ``source`` (image) and either ``driving`` (video) or
  ``motion`` (a motion template), with the form fields of jobspec.FIELDS -> 202
  ``{"id", "status_url"}``
- ``GET /v1/animations/{id}`` -> ``{"status", "frames_done", "frames_total", "error"}``
- ``GET /v1/animations/{id}/result`` -> the video (mp4)
- ``DELETE /v1/animations/{id}``: cancels the job and removes its files
- ``GET /healthz``, ``GET /metrics`` (Prometheus)
- ``/``: the web page (web/), when it is there
"""

import functools
import hmac
import os
import time

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response

from ...atomic import discard
from ...errors import FommError
from . import jobspec, limits
from .metrics import Metrics
from .store import JobStore

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["source"],
                    "properties": {
                        "source": {"type": "string", "format": "binary"},
                        "driving": {
                            "type": "string",
                            "format": "binary",
                            "description": "the driving video (or give motion)",
                        },
                        "motion": {
                            "type": "string",
                            "format": "binary",
                            "description": "a motion template, --save_motion's .npz "
                            "(or give driving)",
                        },
                        **{
                            name: {"type": "boolean" if kind is bool else "integer"}
                            for name, kind in jobspec.FIELDS.items()
                        },
                    },
                }
            }
        },
    }
}


def error(code, message, headers=None):
    return JSONResponse({"error": message}, status_code=code, headers=headers)


def create_app(settings, worker=None):
    """The app over the job store ``settings.jobs``; ``worker`` (worker.Worker) runs the
    jobs and is woken when one arrives. ``settings``: the parsed serve flags."""
    store = JobStore(settings.jobs)
    metrics = worker.metrics if worker else Metrics(store.depth)
    limit = int(settings.max_upload_mb * 1024 * 1024)
    app = FastAPI(
        title="fomm-tf animation service",
        description="Animates a source image by the motion of a driving video or a motion "
        "template (docs/serve.md).",
        version="1",
    )
    app.state.store, app.state.metrics = store, metrics

    @app.middleware("http")
    async def count_and_guard(request: Request, call_next):
        response = guard(request) or await call_next(request)
        metrics.requests.labels(request.method, str(response.status_code)).inc()
        return response

    def guard(request):
        if not settings.token or request.url.path == "/healthz" or page_file(request):
            return None
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {settings.token}".encode()):
            return None
        return error(
            401,
            "missing or wrong token: send Authorization: Bearer TOKEN",
            {"WWW-Authenticate": "Bearer"},
        )

    def page_file(request):
        """The web page's own files hold no data: a browser loads them without a token."""
        path = request.url.path
        return (
            request.method == "GET"
            and web is not None
            and not path.startswith(("/v1/", "/metrics", "/docs", "/openapi.json", "/redoc"))
        )

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics_text():
        return Response(metrics.text(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/animations", status_code=202, openapi_extra=UPLOAD_SCHEMA)
    async def create(request: Request):
        """Queues an animation; 413 past --max_upload_mb, 429 when the queue is full, 400
        for bad input (the message in ``error``)."""
        if limits.declared_too_large(request.headers, limit):
            return error(413, f"the upload is over {settings.max_upload_mb:g} MB")
        if store.depth() >= settings.queue:
            return error(429, "the queue is full; try again later", {"Retry-After": "5"})
        job_id, staged = store.staging()
        try:
            files, fields = await limits.receive(request, staged, limit)
            opts = jobspec.options(fields)
            output = os.path.join(staged, "result.mp4")
            kind = "motion" if "motion" in files else "driving"  # exactly one: limits.receive
            total = await run_in_threadpool(
                jobspec.validate,
                opts,
                files["source"],
                files[kind],
                output,
                settings.max_frames,
                worker.models if worker else None,
                functools.partial(worker.handover.offer, job_id) if worker else None,
            )
            state = {
                "status": "queued",
                "frames_done": 0,
                "frames_total": total,
                "error": None,
                "created": time.time(),
                "options": opts,
                "source": os.path.basename(files["source"]),
                kind: os.path.basename(files[kind]),
            }
            store.commit(job_id, staged, state)
        except limits.TooLarge:
            unstage(job_id, staged)
            return error(413, f"the upload is over {settings.max_upload_mb:g} MB")
        except (limits.BadUpload, FommError) as bad:
            unstage(job_id, staged)
            return error(400, str(bad).replace(staged + os.sep, ""))
        except BaseException:
            unstage(job_id, staged)
            raise
        if worker:
            worker.wake.set()
        return JSONResponse(
            {"id": job_id, "status_url": f"/v1/animations/{job_id}"}, status_code=202
        )

    def unstage(job_id, staged):
        """Removes a job that failed before it was queued, and its reader if one is kept."""
        if worker:
            worker.handover.drop(job_id)
        discard(staged)

    @app.get("/v1/animations/{job_id}")
    def status(job_id: str):
        state = store.state(job_id)
        if state is None:
            return error(404, "no such animation")
        keys = ("status", "frames_done", "frames_total", "error", "warning")
        return {key: state.get(key) for key in keys}

    @app.get("/v1/animations/{job_id}/result")
    def result(job_id: str):
        path = store.result(job_id)
        if path is None:
            state = store.state(job_id)
            if state is None:
                return error(404, "no such animation")
            return error(409, f"the animation is {state['status']}, not done")
        return FileResponse(path, media_type="video/mp4", filename=f"{job_id}.mp4")

    @app.delete("/v1/animations/{job_id}", status_code=204)
    def delete(job_id: str):
        if not store.cancel(job_id):
            return error(404, "no such animation")
        return Response(status_code=204)

    web = web_folder()
    if web is not None:
        from fastapi.staticfiles import StaticFiles

        example = os.path.realpath(os.path.join(web, "example"))  # a link to ../example
        if os.path.isdir(example):
            app.mount("/example", StaticFiles(directory=example), name="example")
        app.mount("/", StaticFiles(directory=web, html=True), name="web")
    if settings.cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=[settings.cors],
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization"],
        )
    return app


def web_folder():
    """web/ beside the package (a checkout) or in the working directory, if there."""
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (os.path.join(here, "..", "..", "..", "web"), os.path.join(os.getcwd(), "web")):
        if os.path.isfile(os.path.join(folder, "index.html")):
            return os.path.abspath(folder)
    return None
