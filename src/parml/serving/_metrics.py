"""Prometheus metrics of the serving app. Under `parml serve` every gunicorn worker writes its
samples to PROMETHEUS_MULTIPROC_DIR (set by the master before forking) and /metrics aggregates
all workers; a plain process uses prometheus_client's default registry."""

from __future__ import annotations

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


def render_metrics():
    """(body, content type) of the Prometheus text exposition, across workers when multiprocess."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        return generate_latest(reg), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
