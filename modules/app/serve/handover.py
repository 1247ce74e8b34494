"""Driving videos the upload check opened, handed to the worker of the same process.

The upload check probes the driving video and opens its decoder (modules/app/video.py
VideoReader); the job would do both again, a sixth of a warm 1-frame job. So the upload keeps
the open reader here, and the job takes it when it starts soon after. A reader waits at most
``KEEP_S`` seconds and only the newest ``KEEP`` are kept: on a busy server the job starts
later, and opens its video itself."""

import os
import threading
import time

KEEP, KEEP_S = 2, 10.0


class Handover:
    def __init__(self):
        self.lock = threading.Lock()
        self.readers = {}  # job id -> (reader, the video's (device, inode), time offered)

    def offer(self, job_id, reader):
        """Keeps ``reader`` (open, of the job's driving video) for the job ``job_id``."""
        identity = _identity(reader.path)
        with self.lock:
            self.readers[job_id] = (reader, identity, time.monotonic())
            old = sorted(self.readers, key=lambda key: self.readers[key][2])[:-KEEP]
            closing = [self.readers.pop(key)[0] for key in old]
        for reader in closing:
            reader.close()

    def take(self, job_id, path):
        """The reader offered for ``job_id``, now reading ``path`` (the job's folder was
        renamed since), or None: none, or ``path`` is not the file it opened."""
        with self.lock:
            reader, identity, _ = self.readers.pop(job_id, (None, None, None))
        if reader is None:
            return None
        if identity is None or _identity(path) != identity:
            reader.close()
            return None
        reader.path = path  # where a second pass (best frame) and the damage check read
        return reader

    def drop(self, job_id):
        """Closes the reader of ``job_id``, if one is kept."""
        with self.lock:
            reader = self.readers.pop(job_id, (None,))[0]
        if reader is not None:
            reader.close()

    def expire(self):
        """Closes the readers kept longer than KEEP_S (their jobs ran elsewhere, or wait)."""
        now = time.monotonic()
        with self.lock:
            old = [key for key, (_, _, since) in self.readers.items() if now - since > KEEP_S]
            closing = [self.readers.pop(key)[0] for key in old]
        for reader in closing:
            reader.close()

    def close(self):
        with self.lock:
            closing = [reader for reader, _, _ in self.readers.values()]
            self.readers.clear()
        for reader in closing:
            reader.close()


def _identity(path):
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino
