"""The durable job store: one folder per job under ``--jobs DIR``, holding its inputs, its
state (``state.json``) and, once complete, its result (``result.mp4``).

Every file is written atomically (modules/atomic.py): a state is always whole, and the result
appears under its name only when the video is complete, so a half-written result is never
served. A job id is a random hex token checked against ``ID`` before it names a path; no name
a client sends reaches the file system.

Several servers may share one folder (Ray Serve replicas, or machines with a shared mount): a
worker takes a job by creating its ``claim`` file exclusively, and touches it while it runs.
A claim whose process is gone (same machine) or that has not been touched for ``LEASE_S``
seconds (another machine) is stale, and its job runs again from the start.
"""

import json
import os
import re
import secrets
import shutil
import socket
import time

from ...atomic import clean_stale, discard, read_record, running, temp_beside, write_file

ID = re.compile(r"[0-9a-f]{32}")
STATE, RESULT, CLAIM, CANCEL = "state.json", "result.mp4", "claim", "cancel"
# A claim not touched for this long (its worker touches it every HEARTBEAT_S) is stale.
LEASE_S = 60
HEARTBEAT_S = 10
HOST = socket.gethostname()


def new_id():
    return secrets.token_hex(16)


class JobStore:
    def __init__(self, root):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.sweep()

    def sweep(self):
        """Removes the half-made job folders and half-written files of processes that died."""
        for name in os.listdir(self.root):
            if ID.fullmatch(name):
                clean_stale(self.root, name)
                folder = os.path.join(self.root, name)
                if os.path.isdir(folder):
                    clean_stale(folder, "result", ".mp4")
                    clean_stale(folder, "state", ".json")

    def folder(self, job_id):
        """The folder of ``job_id``, or None when it is not a well-formed id."""
        if not isinstance(job_id, str) or not ID.fullmatch(job_id):
            return None
        return os.path.join(self.root, job_id)

    # Making a job

    def staging(self):
        """(new id, an empty temporary folder for its files): ``commit`` puts it in place,
        ``discard`` removes it."""
        job_id = new_id()
        return job_id, temp_beside(os.path.join(self.root, job_id), folder=True)

    def commit(self, job_id, staged, state):
        """Writes the first state into ``staged`` and renames it to the job's folder: the job
        exists for every reader only once whole."""
        write_file(os.path.join(staged, STATE), json.dumps(state))
        os.rename(staged, os.path.join(self.root, job_id))

    # Reading

    def state(self, job_id):
        """The job's state, or None: no such job, or one being deleted."""
        folder = self.folder(job_id)
        if folder is None or os.path.exists(os.path.join(folder, CANCEL)):
            return None
        return read_record(os.path.join(folder, STATE), limit=1 << 16)

    def result(self, job_id):
        """The path of the job's complete result, or None."""
        state = self.state(job_id)
        path = os.path.join(self.root, job_id, RESULT) if state else None
        if state and state["status"] == "done" and os.path.isfile(path):
            return path
        return None

    def ids(self):
        return [name for name in os.listdir(self.root) if ID.fullmatch(name)]

    def queued(self):
        """The jobs waiting to run, oldest first: queued ones, and running ones whose
        worker is gone."""
        waiting = []
        for job_id in self.ids():
            state = self.state(job_id)
            if state is None or state["status"] not in ("queued", "running"):
                continue
            if state["status"] == "running" and not self.stale_claim(job_id):
                continue
            waiting.append((state.get("created", 0), job_id))
        return [job_id for _, job_id in sorted(waiting)]

    def depth(self):
        """How many jobs are queued or running."""
        count = 0
        for job_id in self.ids():
            state = self.state(job_id)
            count += bool(state and state["status"] in ("queued", "running"))
        return count

    # Writing

    def update(self, job_id, **fields):
        """Writes the job's state with ``fields`` changed; False when the job is gone."""
        folder = self.folder(job_id)
        state = read_record(os.path.join(folder, STATE), limit=1 << 16)
        if state is None or not os.path.isdir(folder):
            return False
        state.update(fields)
        try:
            write_file(os.path.join(folder, STATE), json.dumps(state))
        except FileNotFoundError:  # deleted meanwhile
            return False
        return True

    def cancel(self, job_id):
        """Marks the job deleted and removes its files unless a live worker runs it (that
        worker stops at its next batch and removes them). False: no such job."""
        folder = self.folder(job_id)
        if folder is None or not os.path.isdir(folder):
            return False
        try:
            write_file(os.path.join(folder, CANCEL), b"")
        except FileNotFoundError:
            return False
        if not self.claimed_live(job_id):
            self.remove(job_id)
        return True

    def cancelled(self, job_id):
        return os.path.exists(os.path.join(self.root, job_id, CANCEL))

    def remove(self, job_id):
        folder = self.folder(job_id)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # Claims: which worker runs a job

    def claim(self, job_id, owner):
        """Takes the job for ``owner`` (this process's worker); False when another live
        worker has it or it is gone."""
        path = os.path.join(self.root, job_id, CLAIM)
        if os.path.exists(path) and self.stale_claim(job_id):
            aside = f"{path}.stale-{secrets.token_hex(4)}"
            try:
                os.rename(path, aside)  # one taker wins the rename
                os.remove(aside)
            except FileNotFoundError:
                return False
        record = json.dumps({"host": HOST, "pid": os.getpid(), "owner": owner}).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except (FileExistsError, FileNotFoundError):
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(record)
        return True

    def heartbeat(self, job_id):
        try:
            os.utime(os.path.join(self.root, job_id, CLAIM))
        except FileNotFoundError:
            pass

    def release(self, job_id):
        discard(os.path.join(self.root, job_id, CLAIM))

    def _claim_record(self, job_id):
        path = os.path.join(self.root, job_id, CLAIM)
        try:
            age = time.time() - os.stat(path).st_mtime
        except FileNotFoundError:
            return None, None
        return read_record(path) or {}, age

    def stale_claim(self, job_id):
        """True when the job's claim is missing or its worker is gone."""
        record, age = self._claim_record(job_id)
        if record is None:
            return True
        if record.get("host") == HOST and isinstance(record.get("pid"), int):
            return not running(record["pid"]) or age > LEASE_S
        return age > LEASE_S

    def claimed_live(self, job_id):
        record, _ = self._claim_record(job_id)
        return record is not None and not self.stale_claim(job_id)
