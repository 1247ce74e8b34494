"""``--serve PORT``: a page on 127.0.0.1 with the source, the camera and the result side by
side, as MJPEG streams (/camera.mjpg, /result.mjpg); GET /stats (JSON) and POST /reset.

The standard library's ThreadingHTTPServer: one thread per client. Each picture is encoded
to JPEG once, by the first client that asks for it, not by the animation loop.
"""

import http.server
import io
import json
import threading

from ...errors import InputError
from .page import PAGE

BOUNDARY = "fommframe"
JPEG_QUALITY = 85


def jpeg(pixels):
    """uint8 [H, W, 3] -> JPEG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


class Picture:
    """The newest picture of one stream; clients wait for the next version."""

    def __init__(self):
        self.version = 0
        self.pixels = None
        self._jpeg = None  # (version, bytes)
        self.changed = threading.Condition()

    def put(self, pixels):
        with self.changed:
            self.pixels = pixels
            self.version += 1
            self.changed.notify_all()

    def wait(self, after, timeout=1.0):
        """(version, JPEG bytes) newer than ``after``, or None after ``timeout`` seconds."""
        with self.changed:
            if self.version <= after:
                self.changed.wait(timeout)
            if self.version <= after or self.pixels is None:
                return None
            version, pixels = self.version, self.pixels
            cached = self._jpeg
        if cached and cached[0] == version:
            return cached
        encoded = (version, jpeg(pixels))
        with self.changed:
            if self._jpeg is None or self._jpeg[0] < version:
                self._jpeg = encoded
        return encoded


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "fomm-live"

    def do_GET(self):
        live = self.server.live
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.send(200, "text/html; charset=utf-8", PAGE.encode())
        elif path == "/stats":
            self.send(200, "application/json", json.dumps(live.stats.summary(False)).encode())
        elif path == "/source.jpg":
            self.send(200, "image/jpeg", live.source_jpeg)
        elif path in ("/camera.mjpg", "/result.mjpg"):
            self.stream(live.camera_picture if path == "/camera.mjpg" else live.result_picture)
        else:
            self.send(404, "text/plain", b"not found\n")

    def do_POST(self):
        if self.path.split("?", 1)[0] == "/reset":
            refused = self.server.live.request_reset()
            if refused:
                body = json.dumps({"reset": False, "error": refused}).encode()
                self.send(409, "application/json", body)
            else:
                self.send(200, "application/json", b'{"reset": true}')
        else:
            self.send(404, "text/plain", b"not found\n")

    def send(self, code, kind, body):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def stream(self, picture):
        """multipart/x-mixed-replace: one JPEG part per new picture, until the client leaves
        or the server stops."""
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        version = 0
        try:
            while not self.server.stopping.is_set():
                got = picture.wait(version)
                if got is None:
                    continue
                version, data = got
                head = (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n"
                )
                self.wfile.write(head.encode() + data + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass  # the terminal shows the session's own lines


class Server:
    """The HTTP server of a live session (``live``: what it shows: ``stats``,
    ``source_jpeg``, ``camera_picture``, ``result_picture``, ``request_reset``)."""

    def __init__(self, port, live):
        try:
            self.http = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as error:
            raise InputError(
                f"--serve {port}: cannot listen on 127.0.0.1:{port} ({error.strerror}); "
                f"choose another port"
            ) from None
        self.http.daemon_threads = True
        self.http.live = live
        self.http.stopping = threading.Event()
        self.port = self.http.server_address[1]
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.http.stopping.set()
        if self.thread.is_alive():
            self.http.shutdown()
        self.http.server_close()
