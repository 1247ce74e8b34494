"""XNNPACK's packed weights kept between runs of testlite.py (``--weight_cache``).

Each time a TF Lite model is loaded, XNNPACK repacks all its weights into its kernels' layout:
about 0.5 s for the vox models with ``--quantize dynamic``, a third of the time to the first
frame. LiteRT can write the packed weights to a file that later runs map instead
(``modules.app.litert``). Such a file is about as large as the model and only valid for that
model file, that LiteRT build and that CPU, so each model gets one folder under the cache root,
named after the model's real path, holding:

- ``weights.xnnpack``: the packed weights, written by the run that packed them under a
  temporary name (``modules.atomic.temp_beside``, which also removes those of killed runs)
  and renamed into place when complete (concurrent runs each write their own and the last
  rename wins; a run that has a file mapped keeps it);
- ``identity.json``: what it was packed from (the model file's size, times and inode, the
  LiteRT version, the CPU). A model rebuilt in place, another LiteRT or another CPU (a home
  folder shared between machines) does not match, and the weights are packed again.

Only files this module wrote are ever mapped: the cache root is the user's, never a model
folder that may have come from elsewhere. Without room for a new file (the model's size plus
``HEADROOM``) or without a writable root, the weights are packed in memory as before.
"""

import dataclasses
import functools
import hashlib
import json
import os
import shutil

from ..atomic import discard, read_record, temp_beside, write_file
from .litert import IN_MEMORY

WEIGHTS, IDENTITY = "weights.xnnpack", "identity.json"
HEADROOM = 256 * 2**20  # XNNPACK aborts the process when a write fails: never fill a disk


def default_root():
    """$XDG_CACHE_HOME/fomm-tf/xnnpack (~/.cache/fomm-tf/xnnpack)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "fomm-tf", "xnnpack")


@dataclasses.dataclass
class Entry:
    """Where LiteRT keeps one model's packed weights: ``path`` (a file, or ``IN_MEMORY``).
    After the model loads, ``commit()`` puts newly packed weights in place; if it fails to
    load, ``discard()`` removes them."""

    path: str
    folder: str = None
    identity: dict = None  # set when ``path`` is a new file to put in place

    def commit(self):
        if self.identity is None:
            return
        try:
            if os.path.getsize(self.path) == 0:  # LiteRT wrote nothing: keep no record
                raise OSError
            os.replace(self.path, os.path.join(self.folder, WEIGHTS))
            write_file(os.path.join(self.folder, IDENTITY), json.dumps(self.identity))
        except OSError:  # the cache only saves time: a failure costs the next run a packing
            self.discard()

    def discard(self):
        if self.identity is not None:
            discard(self.path)


class WeightCache:
    """The cache root (``default_root()`` unless given); ``entry(model_path)``."""

    def __init__(self, root=None):
        self.root = root or default_root()

    def entry(self, model_path):
        """The ``Entry`` for the TF Lite file ``model_path``: its packed weights when they
        match it, else a new file for LiteRT to write (or ``IN_MEMORY``, see above)."""
        model_path = os.path.realpath(model_path)
        folder = os.path.join(self.root, hashlib.sha256(model_path.encode()).hexdigest()[:24])
        identity = identity_of(model_path)
        weights = os.path.join(folder, WEIGHTS)
        if read_record(os.path.join(folder, IDENTITY)) == identity and os.path.isfile(weights):
            return Entry(weights)
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            # Made first: its name removes the weights that killed runs left (their space
            # counts below), and its making shows that the folder is writable.
            path = temp_beside(weights)
            if shutil.disk_usage(folder).free < identity["size"] + HEADROOM:
                discard(path)
                return Entry(IN_MEMORY)
        except OSError:
            return Entry(IN_MEMORY)
        return Entry(path, folder, identity)


def identity_of(model_path):
    """What packed weights are valid for: the model file as it is on disk (a rebuild replaces
    it, which changes its inode and times), the LiteRT version and the CPU."""
    from importlib.metadata import version

    st = os.stat(model_path)
    return {
        "model": model_path,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
        "device": st.st_dev,
        "litert": version("ai-edge-litert"),
        "cpu": cpu_identity(),
    }


@functools.cache
def cpu_identity():
    """A digest of the CPU's model and instruction-set flags (XNNPACK packs for the kernels
    it picks by them), from /proc/cpuinfo, or of what ``platform`` says elsewhere."""
    import platform

    text = f"{platform.machine()} {platform.processor()}"
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read(1 << 20).splitlines()
        keys = ("model name", "flags", "Features", "CPU part")  # x86 and Arm names
        text += "\n".join(sorted({line for line in lines if line.startswith(keys)}))
    except OSError:
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:24]
