"""Prometheus metrics of the serving app. Under `parml serve` every gunicorn worker writes its
samples to PROMETHEUS_MULTIPROC_DIR (set by the master before forking) and /metrics aggregates
all workers; a plain process uses prometheus_client's default registry."""

from __future__ import annotations

import glob
import os
import threading

_LOCK = threading.Lock()
_METRICS = None


class _Metrics:
    def __init__(self):
        from prometheus_client import Counter, Histogram
        self.requests = Counter("parml_requests", "HTTP requests served", ["route", "status"])
        self.latency = Histogram("parml_request_latency_seconds", "Request latency", ["route"],
                                 buckets=(.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5,
                                          1, 2.5, 5, 10))
        self.rows = Counter("parml_rows_predicted", "Rows predicted")


def metrics():
    """The process's metrics (created once: prometheus_client refuses duplicate names)."""
    global _METRICS
    with _LOCK:
        if _METRICS is None:
            _METRICS = _Metrics()
        return _METRICS


# prometheus_client's file header: 4 bytes of used length, 4 of padding
_HEADER_BYTES = 8


class _WorkerFilesCollector:
    """Every worker's sample files in `path`, merged. A worker creates its file empty and sizes it
    a moment later; a file read in between has no header (and no samples yet), and
    prometheus_client's own collector fails the whole scrape on it. Such a file is left out, so a
    scrape that lands while a replacement worker boots still answers."""

    def __init__(self, path):
        self.path = path

    def collect(self):
        from prometheus_client.multiprocess import MultiProcessCollector
        files = []
        for f in glob.glob(os.path.join(self.path, "*.db")):
            try:
                if os.path.getsize(f) >= _HEADER_BYTES:
                    files.append(f)
            except FileNotFoundError:  # a dead worker's live gauge file, removed meanwhile
                pass
        return MultiProcessCollector.merge(files, accumulate=True)


def render_metrics():
    """(body, content type) of the Prometheus text exposition, across workers when multiprocess."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        reg = CollectorRegistry()
        reg.register(_WorkerFilesCollector(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
        return generate_latest(reg), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
