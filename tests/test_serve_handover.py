"""The upload's open driving video, handed to the worker (modules/app/serve/handover.py): real
video files, the tiny-vox TF Lite models loaded in this process as serve.py loads them, and
testlite.py's frames to compare with."""

import os
import shutil

import numpy as np
import pytest
from helpers import model_args, run_in_process
from serve_client import CASE, DRIVING, SOURCE, frames_of

pytest.importorskip("fastapi")

from modules.app.serve import handover, jobspec  # noqa: E402
from modules.app.video import VideoReader  # noqa: E402

OPTS = {"relative": True, "adapt_scale": True}


def staged_job(folder):
    """A job's files as an upload leaves them in its staging folder."""
    folder.mkdir()
    shutil.copy(SOURCE, folder / "source.png")
    shutil.copy(DRIVING, folder / "driving.mp4")
    return folder


def test_a_handed_reader_follows_the_rename(tmp_path):
    staged = staged_job(tmp_path / "staged")
    kept = handover.Handover()
    reader = VideoReader(str(staged / "driving.mp4"))
    kept.offer("job", reader)
    os.rename(staged, tmp_path / "job")  # store.commit
    path = str(tmp_path / "job" / "driving.mp4")
    taken = kept.take("job", path)
    assert taken is reader and taken.path == path
    np.testing.assert_array_equal(list(taken), list(VideoReader(path)))
    assert kept.take("job", path) is None  # taken once


def test_another_file_at_the_path_is_not_handed(tmp_path):
    staged = staged_job(tmp_path / "staged")
    kept = handover.Handover()
    reader = VideoReader(str(staged / "driving.mp4"))
    kept.offer("job", reader)
    path = staged / "driving.mp4"
    os.replace(shutil.copy(path, tmp_path / "other.mp4"), path)  # a new file, same name
    assert kept.take("job", str(path)) is None
    assert reader._reader is None  # closed: its ffmpeg is gone


def test_kept_readers_are_bounded_and_expire(tmp_path, monkeypatch):
    kept = handover.Handover()
    readers = [VideoReader(str(DRIVING)) for _ in range(handover.KEEP + 1)]
    for i, reader in enumerate(readers):
        kept.offer(f"job{i}", reader)
    assert readers[0]._reader is None and sorted(kept.readers) == ["job1", "job2"]
    monkeypatch.setattr(handover, "KEEP_S", 0.0)
    kept.expire()
    assert kept.readers == {} and all(reader._reader is None for reader in readers)


def test_a_job_on_the_handed_reader_gives_the_scripts_frames(built, tmp_path):
    from modules.app.serve import command
    from modules.app.serve.metrics import Metrics
    from modules.app.serve.store import JobStore
    from modules.app.serve.worker import Worker

    args = command.parse([*model_args("testlite.py", CASE, built), "--jobs", str(tmp_path)], "t")
    worker = Worker(JobStore(str(tmp_path / "jobs")), command.load_models(args), Metrics(int), 99)
    staged = staged_job(tmp_path / "staged")
    files = [str(staged / name) for name in ("source.png", "driving.mp4", "result.mp4")]
    offered = []

    def keep(reader):
        offered.append(reader)
        worker.handover.offer("job", reader)

    assert jobspec.validate(OPTS, *files, 99, worker.models, keep) == 8
    os.rename(staged, tmp_path / "job")
    state = {"options": OPTS, "source": "source.png", "driving": "driving.mp4"}
    count, _ = worker.animate(state, str(tmp_path / "job"), lambda n: None, "job")
    assert count == 8 and worker.handover.readers == {} and offered[0]._reader is None

    script = tmp_path / "script.mp4"
    flags = ["--source_image", str(SOURCE), "--driving_video", str(DRIVING), "--relative"]
    flags += ["--adapt_scale", "--output", str(script)]
    run_in_process("testlite.py", [*model_args("testlite.py", CASE, built), *flags])
    np.testing.assert_array_equal(frames_of(tmp_path / "job" / "result.mp4"), frames_of(script))
