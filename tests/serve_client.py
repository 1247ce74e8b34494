"""A client of serve.py for tests/test_serve.py: the server in a child process, the API over
urllib, multipart bodies, and raw-socket uploads for the size limits."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import imageio.v2 as imageio
import numpy as np
from helpers import ROOT, demo, model_args

CASE = "tiny-vox"
SOURCE = demo(CASE) / "source.png"
DRIVING = demo(CASE) / "driving.mp4"
START_S = 180  # a cold start (imports, models, XNNPACK packing) on a busy 2-core machine


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """serve.py in a child process; ``stop`` sends SIGTERM and waits for its exit."""

    def __init__(self, built, jobs, *flags, token=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        args = [*model_args("testlite.py", CASE, built), "--jobs", str(jobs)]
        args += ["--port", str(self.port), *flags]
        if token:
            args += ["--token", token]
        self.log = open(pathlib.Path(jobs).parent / f"server-{self.port}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "serve.py"), *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve.py exited: {self.output()}"
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"serve.py did not start: {self.output()}")

    def output(self):
        self.log.flush()
        return pathlib.Path(self.log.name).read_text()[-3000:]

    def request(self, method, path, body=None, headers=None, token=True):
        headers = dict(headers or {})
        if token and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, body, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers

    def post(self, source=SOURCE, driving=DRIVING, motion=None, token=True, **fields):
        body, kind = form({"source": source, "driving": driving, "motion": motion}, fields)
        code, data, headers = self.request(
            "POST", "/v1/animations", body, {"Content-Type": kind}, token
        )
        return code, json.loads(data), headers

    def status(self, job_id):
        code, data, _ = self.request("GET", f"/v1/animations/{job_id}")
        return code, json.loads(data)

    def wait(self, job_id, until=("done", "failed"), timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, state = self.status(job_id)
            assert code == 200, state
            if state["status"] in until:
                return state
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still {state}")

    def result(self, job_id, folder):
        code, data, headers = self.request("GET", f"/v1/animations/{job_id}/result")
        assert code == 200, data
        assert headers["Content-Type"] == "video/mp4"
        path = pathlib.Path(folder) / f"{job_id}.mp4"
        path.write_bytes(data)
        return frames_of(path)

    def metrics(self):
        code, data, _ = self.request("GET", "/metrics")
        assert code == 200
        values = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def stop(self, signum=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def form(files, fields):
    """A multipart/form-data body with the ``files`` ({field: path or bytes, or None: left
    out}) and text ``fields``."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in files.items():
        if value is None:
            continue
        data = value if isinstance(value, bytes) else pathlib.Path(value).read_bytes()
        filename = "upload" if isinstance(value, bytes) else pathlib.Path(value).name
        head = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        parts.append(head.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + data)
    for name, value in fields.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        parts.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{text}'.encode())
    body = b"".join(f"--{boundary}\r\n".encode() + part + b"\r\n" for part in parts)
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def frames_of(path):
    return np.stack(imageio.mimread(str(path), memtest=False))


def raw_upload(server, size, chunked, field="driving"):
    """Sends a POST of ``size`` body bytes (the file ``field``) over a raw socket, stopping
    when the server answers; returns the answer's first bytes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = "POST /v1/animations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0k\r\n"
        head += "Content-Type: multipart/form-data; boundary=b\r\n"
        head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n"
        sock.sendall((head + "\r\n").encode())
        preamble = (
            b'--b\r\nContent-Disposition: form-data; name="%s"; filename="a"' % field.encode()
        )
        preamble += b"\r\n\r\n"
        chunk = b"\0" * 65536
        sock.settimeout(0.05)
        try:
            for piece in [preamble] + [chunk] * (size // len(chunk)):
                data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
                sock.sendall(data)
                try:
                    answer = sock.recv(65536)
                    if answer:
                        return answer
                except TimeoutError:
                    continue
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(30)
        return sock.recv(65536)
