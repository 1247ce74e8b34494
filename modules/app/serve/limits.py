"""Bounded uploads: the multipart body of ``POST /v1/animations`` is streamed to the job's
folder with a byte counter, never held whole in memory, and refused (413) past the limit,
from its Content-Length before a byte is read when it declares one.

The files get names of ours (``source.png``, ``driving.mp4``, ``motion.npz``...): the
client's file name only picks an extension from an allow-list, since the readers pick their
decoder by it."""

import os

from python_multipart.multipart import MultipartParser, parse_options_header

from ...errors import InputError

FILES = {"source": ".png", "driving": ".mp4", "motion": ".npz"}  # -> extension when unknown
# The animation's motion: a driving video, or a motion template (modules/app/motion.py).
MOTIONS = ("driving", "motion")
GIVE = "give source, and driving (a video) or motion (a motion template)"
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif", ".mpg", ".mpeg"}
MAX_FIELDS, MAX_FIELD_BYTES = 32, 256


class TooLarge(InputError):
    """The body is over the upload limit (413)."""


class BadUpload(InputError):
    """A body that is not the multipart form the API takes (400)."""


def declared_too_large(headers, limit):
    """True when the request's Content-Length is over ``limit`` bytes."""
    length = headers.get("content-length")
    return length is not None and (not length.isdigit() or int(length) > limit)


def extension(field, filename):
    """Our extension for the file of ``field``: the client's when on the allow-list."""
    if field == "motion":
        return FILES[field]  # a template is read as one whatever its name
    allowed = IMAGE_EXTENSIONS if field == "source" else VIDEO_EXTENSIONS
    ext = os.path.splitext(filename or "")[1].lower()
    return ext if ext in allowed else FILES[field]


class FormWriter:
    """The callbacks of python-multipart's streaming parser: file parts go to files in
    ``folder``, text fields (small) to ``fields``."""

    def __init__(self, folder):
        self.folder = folder
        self.files, self.fields = {}, {}
        self.header_name, self.header_value, self.headers = b"", b"", {}
        self.part = None  # (field name, open file or bytearray)

    def callbacks(self):
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda data, start, end: self._add("header_name", data[start:end]),
            "on_header_value": lambda data, start, end: self._add("header_value", data[start:end]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def _add(self, attribute, data):
        setattr(self, attribute, getattr(self, attribute) + data)

    def part_begin(self):
        self.headers, self.part = {}, None

    def header_end(self):
        self.headers[self.header_name.decode("latin-1").lower()] = self.header_value
        self.header_name, self.header_value = b"", b""

    def headers_finished(self):
        disposition, params = parse_options_header(self.headers.get("content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if disposition != b"form-data" or not name:
            raise BadUpload("each part of the form needs a Content-Disposition with a name")
        if b"filename" in params or name in FILES:
            if name not in FILES:
                raise BadUpload(f"unknown file field '{name[:40]}' ({GIVE})")
            if name in self.files:
                raise BadUpload(f"the file field '{name}' is given twice")
            filename = params.get(b"filename", b"").decode("utf-8", "replace")
            path = os.path.join(self.folder, name + extension(name, filename))
            self.files[name] = path
            self.part = (name, open(path, "xb"))
        else:
            if len(self.fields) >= MAX_FIELDS or name in self.fields:
                raise BadUpload(f"too many form fields, or '{name[:40]}' twice")
            self.part = (name, bytearray())

    def part_data(self, data, start, end):
        name, sink = self.part
        if isinstance(sink, bytearray):
            sink += data[start:end]
            if len(sink) > MAX_FIELD_BYTES:
                raise BadUpload(f"form field '{name[:40]}' is over {MAX_FIELD_BYTES} bytes")
        else:
            sink.write(data[start:end])

    def part_end(self):
        if self.part is None:
            return
        name, sink = self.part
        if isinstance(sink, bytearray):
            self.fields[name] = sink.decode("utf-8", "replace")
        else:
            sink.close()
        self.part = None

    def close(self):
        if self.part is not None and not isinstance(self.part[1], bytearray):
            self.part[1].close()


async def receive(request, folder, limit):
    """Streams the multipart body of ``request`` into ``folder``; returns ({file field:
    path}, {text field: value}). TooLarge past ``limit`` bytes, BadUpload for a body that
    is not such a form."""
    if declared_too_large(request.headers, limit):
        raise TooLarge()
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadUpload(f"the body must be multipart/form-data ({GIVE})")
    writer = FormWriter(folder)
    parser = MultipartParser(boundary, writer.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise TooLarge()
            parser.write(chunk)
        parser.finalize()
    except (TooLarge, BadUpload):
        raise
    except Exception as error:  # python-multipart's parse errors
        raise BadUpload(f"the multipart body is malformed ({type(error).__name__})") from None
    finally:
        writer.close()
    if "source" not in writer.files:
        raise BadUpload(f"missing file field: source ({GIVE})")
    given = [name for name in MOTIONS if name in writer.files]
    if len(given) != 1:
        which = "both driving and motion" if given else "neither driving nor motion"
        raise BadUpload(f"{which} given; {GIVE}")
    return writer.files, writer.fields
