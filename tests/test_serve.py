"""The animation service (serve.py, docs/serve.md): a real uvicorn process on 127.0.0.1 at a
free port, on the tiny-vox TF Lite models, driven by a real HTTP client (urllib, raw sockets
for the upload limits)."""

import json
import os
import pathlib
import subprocess
import threading
import time

import numpy as np
import pytest
from helpers import long_video, model_args, run_in_process
from serve_client import CASE, DRIVING, SOURCE, Server, frames_of, raw_upload

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def server(built, tmp_path_factory):
    """One server for the tests that share it (their jobs do not disturb one another)."""
    folder = tmp_path_factory.mktemp("serve")
    s = Server(built, folder / "jobs")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def script_frames(built, tmp_path_factory):
    """testlite.py's frames for the demo inputs with --relative --adapt_scale."""
    output = tmp_path_factory.mktemp("script") / "script.mp4"
    args = [*model_args("testlite.py", CASE, built), "--source_image", str(SOURCE)]
    args += ["--driving_video", str(DRIVING), "--output", str(output)]
    run_in_process("testlite.py", [*args, "--relative", "--adapt_scale"])
    return frames_of(output)


@pytest.fixture(scope="module")
def template(built, tmp_path_factory):
    """(testlite.py --save_motion's template of the demo driving video, testlite.py
    --driving_motion's frames of it with --relative --adapt_scale)."""
    folder = tmp_path_factory.mktemp("template")
    path, replay = folder / "talk.npz", folder / "replay.mp4"
    args = [*model_args("testlite.py", CASE, built), "--source_image", str(SOURCE)]
    run_in_process(
        "testlite.py",
        [*args, "--driving_video", str(DRIVING), "--output", str(folder / "saved.mp4")]
        + ["--save_motion", str(path)],
    )
    run_in_process(
        "testlite.py",
        [*args, "--driving_motion", str(path), "--output", str(replay)]
        + ["--relative", "--adapt_scale"],
    )
    return path, frames_of(replay)


@pytest.fixture(scope="module")
def long_driving(tmp_path_factory):
    """A 400-frame driving video: a job that runs long enough to be interrupted."""
    return long_video(tmp_path_factory.mktemp("long") / "long.mp4", frames=400)


def test_job_gives_the_scripts_frames(server, script_frames, tmp_path):
    code, answer, _ = server.post(relative=True, adapt_scale=True)
    assert code == 202, answer
    assert answer["status_url"] == f"/v1/animations/{answer['id']}"
    state = server.wait(answer["id"])
    assert state["status"] == "done", state
    assert state["frames_done"] == state["frames_total"] == len(script_frames)
    np.testing.assert_array_equal(server.result(answer["id"], tmp_path), script_frames)


def test_eight_concurrent_jobs(server, script_frames, tmp_path):
    answers = [None] * 8

    def submit(i):
        answers[i] = server.post(relative=True, adapt_scale=True)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [code for code, _, _ in answers] == [202] * 8, answers
    for _, answer, _ in answers:
        assert server.wait(answer["id"])["status"] == "done"
        np.testing.assert_array_equal(server.result(answer["id"], tmp_path), script_frames)


def test_bad_image_is_400_with_the_message(server):
    code, answer, _ = server.post(source=os.urandom(5000))
    assert code == 400
    assert "Cannot read image" in answer["error"] or "Image" in answer["error"], answer
    assert "/" not in answer["error"].split("'")[1], answer  # no server path in the message


def test_lying_video_header_is_400_before_any_frame(server, tmp_path):
    gap = tmp_path / "gap.mkv"  # 10 frames 1000 s apart: 9001 frames by its timestamps
    ffmpeg = __import__("imageio_ffmpeg").get_ffmpeg_exe()
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=1",
            "-frames:v",
            "10",
            "-vf",
            "setpts=N*1000/TB",
            "-c:v",
            "libx264",
            str(gap),
        ],
        check=True,
    )
    code, answer, _ = server.post(driving=gap)
    assert code == 400
    assert "9001 frames" in answer["error"] and "--max_frames" in answer["error"], answer
    code, answer, _ = server.post(driving=b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    assert code == 400 and "error" in answer


def test_motion_template_gives_the_scripts_frames_and_is_kept(server, template, tmp_path):
    path, replay = template
    code, answer, _ = server.post(driving=None, motion=path, relative=True, adapt_scale=True)
    assert code == 202, answer
    state = server.wait(answer["id"])
    assert state["status"] == "done", state
    assert state["frames_done"] == state["frames_total"] == len(replay)
    np.testing.assert_array_equal(server.result(answer["id"], tmp_path), replay)
    # The job store keeps the template as it keeps a driving video, under a name of its own.
    folder = pathlib.Path(server.output().split("jobs in ")[1].split(")")[0]) / answer["id"]
    assert (folder / "motion.npz").read_bytes() == path.read_bytes()
    stored = json.loads((folder / "state.json").read_text())
    assert stored["motion"] == "motion.npz" and "driving" not in stored


def test_one_of_driving_and_motion(server, template):
    for driving, motion in ((None, None), (DRIVING, template[0])):
        code, answer, _ = server.post(driving=driving, motion=motion)
        assert code == 400, answer
        assert "driving (a video) or motion (a motion template)" in answer["error"], answer


def bad_templates(path, folder):
    """{what: (template bytes, words of the error)} for ``path``, a good template."""
    from modules.app import motion

    good = motion.load(str(path))
    pickled = folder / "pickled.npz"
    np.savez(pickled, kp_driving_value=np.array([{"a": 1}], dtype=object))
    other = folder / "other.npz"
    value = good.driving["value"][:, :5]
    jacobian = good.driving["jacobian"][:, :5]
    initial = {key: array[:, :5] for key, array in good.initial.items()}
    motion.save(other, {"value": value, "jacobian": jacobian}, initial, 25, good.frame_shape)
    return {
        "garbage": (os.urandom(3000), ("cannot read motion template 'motion.npz'",)),
        "pickled": (pickled.read_bytes(), ("pickled Python objects",)),
        "other model": (other.read_bytes(), ("was made for", "5 keypoints")),
    }


def test_bad_template_is_400_with_the_message(server, template, tmp_path):
    for what, (data, words) in bad_templates(template[0], tmp_path).items():
        code, answer, _ = server.post(driving=None, motion=data)
        assert code == 400, (what, answer)
        for word in words:
            assert word in answer["error"], (what, answer)
        assert str(tmp_path) not in answer["error"] and "/" not in answer["error"], answer


def test_template_over_max_frames_is_400_unless_frames_cuts_it(server, template, tmp_path):
    from modules.app import motion

    good = motion.load(str(template[0]))
    long = tmp_path / "long.npz"  # 3008 frames, over the server's --max_frames 3000
    driving = {key: np.concatenate([array] * 376) for key, array in good.driving.items()}
    motion.save(long, driving, good.initial, 25, good.frame_shape)
    code, answer, _ = server.post(driving=None, motion=long)
    assert code == 400, answer
    assert "the motion template has 3008 frames" in answer["error"], answer
    assert "--max_frames" in answer["error"], answer
    code, answer, _ = server.post(driving=None, motion=long, frames=12)
    assert code == 202, answer
    state = server.wait(answer["id"])
    assert state["status"] == "done" and state["frames_done"] == 12, state


def test_unknown_field_and_bad_value_are_400(server):
    assert server.post(speed="x")[0] == 400
    code, answer, _ = server.post(relative="maybe")
    assert code == 400 and "true or false" in answer["error"]


def test_unknown_or_malformed_job_id_is_404(server):
    assert server.request("GET", "/v1/animations/..%2F..%2Fetc")[0] == 404
    assert server.status("0" * 32)[0] == 404
    assert server.request("DELETE", "/v1/animations/nothex")[0] == 404


def test_delete_during_a_run(server, long_driving):
    code, answer, _ = server.post(driving=long_driving)
    assert code == 202
    job_id = answer["id"]
    state = server.wait(job_id, until=("running",))
    assert server.request("DELETE", f"/v1/animations/{job_id}")[0] == 204
    assert server.status(job_id)[0] == 404
    folder = pathlib.Path(server.output().split("jobs in ")[1].split(")")[0]) / job_id
    deadline = time.monotonic() + 30
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not folder.exists(), "the deleted job's files are still there"
    assert state["frames_total"] == 400
    # The worker goes on with the next job.
    code, answer, _ = server.post()
    assert server.wait(answer["id"])["status"] == "done"


def test_metrics_count_what_happened(server):
    before = server.metrics()
    ids = [server.post()[1]["id"] for _ in range(2)]
    assert server.post(source=b"not an image")[0] == 400
    for job_id in ids:
        server.wait(job_id)
    after = server.metrics()

    def grew(name):
        return after.get(name, 0) - before.get(name, 0)

    assert grew('fomm_http_requests_total{code="202",method="POST"}') == 2
    assert grew('fomm_http_requests_total{code="400",method="POST"}') == 1
    assert grew('fomm_jobs_total{status="done"}') == 2
    assert grew('fomm_job_duration_seconds_count{status="done"}') == 2
    assert grew("fomm_frames_total") == 16
    assert after["fomm_frames_per_second"] > 0
    assert "fomm_queue_depth" in after


def test_limits_and_token(built, tmp_path, long_driving):
    s = Server(built, tmp_path / "jobs", "--max_upload_mb", "4", "--queue", "1", token="t0k")
    try:
        # 401 without the token (or a wrong one), on every endpoint but /healthz.
        assert s.post(token=False)[0] == 401
        for path in ("/metrics", "/v1/animations/" + "0" * 32, "/docs"):
            assert s.request("GET", path, token=False)[0] == 401
        wrong = {"Authorization": "Bearer t0kX"}
        assert s.request("GET", "/metrics", headers=wrong, token=False)[0] == 401
        assert s.request("GET", "/healthz", token=False)[0] == 200
        # 413 from Content-Length, before the body is read.
        assert raw_upload(s, 10**9, chunked=False).startswith(b"HTTP/1.1 413")
        # 413 from the byte counter, for a body that does not say its length.
        assert raw_upload(s, 10**7, chunked=True).startswith(b"HTTP/1.1 413")
        assert raw_upload(s, 10**7, chunked=True, field="motion").startswith(b"HTTP/1.1 413")
        assert not [p for p in (tmp_path / "jobs").iterdir()], "a refused upload left files"
        # 429 with Retry-After while the one queue place is taken.
        code, answer, _ = s.post(driving=long_driving)
        assert code == 202, answer
        code, refused, headers = s.post()
        assert code == 429 and int(headers["Retry-After"]) > 0, refused
        assert s.request("DELETE", f"/v1/animations/{answer['id']}")[0] == 204
    finally:
        s.stop()


@pytest.mark.slow
def test_sigterm_during_a_job_then_restart_completes_it(built, tmp_path, long_driving):
    jobs = tmp_path / "jobs"
    s = Server(built, jobs)
    code, short, _ = s.post()
    assert s.wait(short["id"])["status"] == "done"
    code, answer, _ = s.post(driving=long_driving)
    job_id = answer["id"]
    deadline = time.monotonic() + 60
    while s.status(job_id)[1]["frames_done"] < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s.stop() == 143, s.output()
    state = json.loads((jobs / job_id / "state.json").read_text())
    assert state["status"] in ("queued", "running"), state
    assert not (jobs / job_id / "result.mp4").exists()
    s = Server(built, jobs)
    try:
        state = s.wait(job_id, timeout=170)
        assert state["status"] == "done" and state["frames_done"] == 400, state
        assert len(s.result(job_id, tmp_path)) == 400
        assert len(s.result(short["id"], tmp_path)) == 8  # a done job is still served
    finally:
        s.stop()


@pytest.mark.slow
def test_ray_serve_deployment_gives_the_same_frames(built, tmp_path, script_frames):
    pytest.importorskip("ray.serve")
    s = Server(built, tmp_path / "shared-jobs", "--ray", "--replicas", "2")
    try:
        ids = [s.post(relative=True, adapt_scale=True)[1]["id"] for _ in range(3)]
        for job_id in ids:
            assert s.wait(job_id, timeout=170)["status"] == "done"
            np.testing.assert_array_equal(s.result(job_id, tmp_path), script_frames)
    finally:
        assert s.stop() in (0, 143), s.output()


@pytest.mark.slow
def test_web_page_runs_on_this_server(server):
    """The page served at / offers "Run on this server", which animates the example files
    through the API (it needs neither the in-browser runtime nor its models)."""
    browser = pytest.importorskip("browser")
    pytest.importorskip("selenium")
    if not (os.path.exists(browser.CHROMIUM) and os.path.exists(browser.CHROMEDRIVER)):
        pytest.skip("chromium and chromium-driver are not installed")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with browser.chromium() as driver:
        driver.get(server.url + "/")
        button = WebDriverWait(driver, 30).until(
            lambda d: (
                d.find_element(By.ID, "run-server").is_displayed()
                and d.find_element(By.ID, "run-server")
            )
        )
        button.click()
        browser.wait_for_text(driver, "progress-text", "done on the server", timeout=120)
        assert driver.find_element(By.ID, "result-video").get_attribute("src").startswith("blob:")
        assert not driver.find_element(By.ID, "message").is_displayed()
