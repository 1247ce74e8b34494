"""The service's Prometheus metrics (``GET /metrics``): requests by status code, job
durations, queue depth and frames per second. Each app has a registry of its own."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Job durations from a 1-frame job on a tiny model to minutes of full-size video.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class Metrics:
    def __init__(self, queue_depth):
        """``queue_depth``: a function giving the jobs queued or running, read at scrape."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fomm_http_requests",
            "HTTP requests answered, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "fomm_jobs", "Jobs ended, by outcome", ["status"], registry=self.registry
        )
        self.job_seconds = Histogram(
            "fomm_job_duration_seconds",
            "Time from a job's start to its end, by outcome",
            ["status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.frames = Counter("fomm_frames", "Frames animated", registry=self.registry)
        self.fps = Gauge(
            "fomm_frames_per_second",
            "Frames per second of the last job that ended",
            registry=self.registry,
        )
        depth = Gauge("fomm_queue_depth", "Jobs queued or running", registry=self.registry)
        depth.set_function(queue_depth)

    def job_ended(self, status, seconds, frames):
        self.jobs.labels(status).inc()
        self.job_seconds.labels(status).observe(seconds)
        if frames and seconds > 0 and status == "done":
            self.fps.set(frames / seconds)

    def text(self):
        return generate_latest(self.registry)
