"""SHA-256 manifests of build.py's outputs: written with the exports, checked before a load.

Each output folder of a model gets ``manifest.json`` (saved_models/NAME/, tflite/NAME/,
onnx/NAME/, tfjs/NAME/, web/models/NAME/): every file build.py wrote there, by its path
relative to the folder, with its SHA-256 and size. test.py, testlite.py and the web page
(web/fomm.js) check the files they are about to load against it, before anything loads:
one flipped bit in a model gives wrong frames and no error, and a SavedModel is a program
(its graph runs its own ops), so a changed one must not load.

Imports nothing heavy: the scripts check before TensorFlow loads. Files are hashed in
chunks, so memory stays bounded whatever the model's size.
"""

import hashlib
import json
import os
import posixpath
import re
import sys

from ..atomic import write_file
from ..errors import UsageError

MANIFEST = "manifest.json"
FORMAT = "fomm-manifest-1"
CHUNK = 1 << 20
# A manifest lists a few dozen files; anything much larger is not one build.py wrote.
MAX_MANIFEST_BYTES = 16 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
# atomic.temp_beside's temporaries (a concurrent build's, or a killed one's) are no outputs.
_TEMPORARY = re.compile(r"\..*\.tmp-\d+-[0-9a-f]{8}.*")


def file_hash(path):
    """(SHA-256 hex digest, size in bytes) of the file at ``path``, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def files_under(folder, part=""):
    """Relative paths ('/'-separated) of the files at or under ``folder/part``, the manifest
    and temporaries left out. A symbolic link to a folder is listed as an entry (never
    followed), so that a check finds it unlisted."""
    top = os.path.join(folder, part) if part else folder
    if not os.path.isdir(top):
        return [part] if os.path.lexists(top) else []
    found = []
    for parent, dirs, names in os.walk(top):
        links = [d for d in dirs if os.path.islink(os.path.join(parent, d))]
        dirs[:] = [d for d in dirs if d not in links]
        for name in names + links:
            relative = os.path.relpath(os.path.join(parent, name), folder).replace(os.sep, "/")
            if relative != MANIFEST and not _TEMPORARY.fullmatch(name):
                found.append(relative)
    return sorted(found)


def update(folder, parts=None):
    """Writes ``folder/manifest.json`` (atomically) after build.py wrote ``parts`` there
    (relative files or folders; None: the whole folder): their entries are replaced by the
    files now there, and the entries of earlier builds' other parts (build.py --module) kept."""
    entries = {} if parts is None else (_valid(_read(folder)) or {})
    parts = [""] if parts is None else [p.replace(os.sep, "/").strip("/") for p in parts]
    for part in parts:
        entries = {k: v for k, v in entries.items() if not _under(k, part)}
        for relative in files_under(folder, part):
            digest, size = file_hash(os.path.join(folder, relative))
            entries[relative] = {"sha256": digest, "size": size}
    record = {"format": FORMAT, "algorithm": "sha256", "files": dict(sorted(entries.items()))}
    write_file(os.path.join(folder, MANIFEST), json.dumps(record, indent=1) + "\n")


def verify(folder, parts, build_hint):
    """Checks ``parts`` of ``folder`` (relative files, or folders whose every file must be
    listed) against ``folder/manifest.json`` before they load; raises a UsageError on any
    difference. A folder without a manifest (built before build.py wrote them) gets a
    one-line warning and passes."""
    path = os.path.join(folder, MANIFEST)
    record = _read(folder)
    if record is None:
        print(
            f"warning: {shown(folder)} has no {MANIFEST}, so its files are not checked "
            f"before they load; rebuild with: {build_hint}",
            file=sys.stderr,
        )
        return
    entries = _valid(record)
    if entries is None:
        raise UsageError(
            f"{shown(path)} is not a manifest that build.py wrote; rebuild with: {build_hint}"
        )
    for part in parts:
        part = part.replace(os.sep, "/").strip("/")
        present = files_under(folder, part)
        listed = [k for k in entries if _under(k, part)]
        unlisted = [r for r in present if r not in entries] or ([] if listed else [part])
        if unlisted:
            raise UsageError(
                f"{shown(os.path.join(folder, unlisted[0]))} is not listed in its manifest "
                f"({shown(path)}): build.py did not write it; remove it, or rebuild with: "
                f"{build_hint}"
            )
        missing = sorted(set(listed) - set(present))
        if missing:
            raise UsageError(
                f"{shown(os.path.join(folder, missing[0]))} is missing, though its manifest "
                f"({shown(path)}) lists it; rebuild with: {build_hint}"
            )
        for relative in present:
            _check_file(folder, relative, entries[relative], path, build_hint)


def _check_file(folder, relative, entry, manifest, build_hint):
    file = os.path.join(folder, relative)
    problem = None
    if not os.path.isfile(file):  # a pipe would block the read; a folder has no hash
        problem = "is not a regular file"
    else:
        try:
            if os.path.getsize(file) != entry["size"] or file_hash(file)[0] != entry["sha256"]:
                problem = "does not match its manifest"
        except OSError as error:
            raise UsageError(
                f"cannot read {shown(file)} ({error.strerror or error}); "
                f"rebuild it with: {build_hint}"
            ) from None
    if problem:
        raise UsageError(
            f"{shown(file)} {problem} ({shown(manifest)}): the file changed since build.py "
            f"wrote it; rebuild with: {build_hint}"
        )


def _read(folder):
    """The manifest's JSON value; None when there is no manifest file; False when it cannot
    be read or parsed."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.lexists(path):
        return None
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_MANIFEST_BYTES:
            return False
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return False


def _valid(record):
    """The manifest's entries {relative path: {"sha256", "size"}}, or None when ``record``
    is not a manifest of this format. Paths must stay inside the folder."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    files = record.get("files")
    if not isinstance(files, dict):
        return None
    for relative, entry in files.items():
        if (
            not relative
            or relative.startswith("/")
            or posixpath.normpath(relative) != relative
            or relative.split("/")[0] == ".."
            or not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not _SHA256.fullmatch(entry["sha256"])
            or type(entry.get("size")) is not int
        ):
            return None
    return files


def _under(relative, part):
    return not part or relative == part or relative.startswith(part + "/")


def shown(path):
    """``path`` relative to the working directory when it lies below it, as typed paths do."""
    relative = os.path.relpath(os.path.abspath(path))
    return path if relative.startswith("..") else relative
