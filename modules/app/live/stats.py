"""What a live session measures: frames in, out and dropped, the frame rate, the latency from
a camera frame's arrival to its result, and where each frame's time goes."""

import json
import threading
import time

import numpy as np

# The steps of one frame, in order (milliseconds each).
STAGES = ("resize", "kp_detector", "process_kp", "generator", "convert")


def percentile(values, q):
    return round(float(np.percentile(values, q)), 2) if values else None


class Stats:
    """Filled by the loop (``frame``), read by /stats and ``--stats FILE`` (``summary``)."""

    def __init__(self, backend, camera):
        self.backend = backend
        self.camera = camera
        self.started = time.perf_counter()
        self.first_result = None
        self.last_result = None
        self.latencies = []
        self.stages = {stage: [] for stage in STAGES}
        self.camera_frames = []  # for each output frame, the camera frame it animates
        self.resets = []  # the camera frames that became the reference, after frame 0
        self.lock = threading.Lock()

    def frame(self, frame, stages, ready):
        """One result, of the camera Frame ``frame``, ready at ``ready`` (perf_counter)."""
        with self.lock:
            self.camera_frames.append(frame.index)
            self.latencies.append((ready - frame.arrival) * 1000)
            for stage, seconds in stages.items():
                self.stages[stage].append(seconds * 1000)
            self.first_result = self.first_result or ready
            self.last_result = ready

    def reset(self, index):
        with self.lock:
            self.resets.append(index)

    @property
    def frames_out(self):
        return len(self.camera_frames)

    def fps(self):
        """Results per second between the first result and the last."""
        count = self.frames_out
        if count < 2 or self.last_result <= self.first_result:
            return None
        return round((count - 1) / (self.last_result - self.first_result), 2)

    def summary(self, frames=True):
        """The JSON of ``--stats`` (``frames``: with ``camera_frames``)."""
        with self.lock:
            out = {
                "camera": self.camera.spec,
                "frames_in": self.camera.frames_in,
                "frames_out": self.frames_out,
                "dropped": self.camera.dropped,
                "fps": self.fps(),
                "seconds": round(time.perf_counter() - self.started, 3),
                "latency_ms": {
                    "p50": percentile(self.latencies, 50),
                    "p95": percentile(self.latencies, 95),
                },
                "stages_ms": {
                    stage: round(float(np.mean(ms)), 2) if ms else None
                    for stage, ms in self.stages.items()
                },
                "backend": self.backend,
                "resets": list(self.resets),
            }
            if frames:
                out["camera_frames"] = list(self.camera_frames)
            return out

    def write(self, path):
        """``--stats FILE``, written whole or not at all."""
        from ...atomic import write_file

        write_file(path, json.dumps(self.summary(), indent=1) + "\n")
