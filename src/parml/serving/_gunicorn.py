"""`parml serve`: the serving app on a gunicorn pool of sync worker processes.

The master never loads the model for use and never runs a kernel (no OpenMP region, no parml
thread pool, nothing that could deadlock a fork): it only verifies the model files, then forks.
Each worker memory-maps the model after the fork (no preload), so all workers share one copy of
the arrays through the page cache. SIGHUP makes gunicorn start fresh workers, which load the
model files as they are now, and retire the old ones gracefully; a worker that dies is replaced.
"""

from __future__ import annotations

import os
import shutil
import tempfile


def cores():
    """CPUs this process may use (affinity and cgroup quota: parml's one thread policy), found
    without starting OpenMP."""
    from parml._threads import available_cpus
    return max(1, available_cpus())


def serve(model_path, *, name=None, workers=1, threads_per_worker=None, host="127.0.0.1",
          port=8080, max_body_mb=16, timeout=30, log_level="info"):
    """Run the server in the foreground until it is stopped (SIGINT/SIGTERM)."""
    from gunicorn.app.base import BaseApplication

    from parml.persistence import verify

    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if threads_per_worker is None:
        threads_per_worker = max(1, cores() // workers)
    if threads_per_worker < 1:
        raise ValueError(f"--threads-per-worker must be >= 1, got {threads_per_worker}")
    if max_body_mb <= 0:
        raise ValueError(f"--max-body-mb must be positive, got {max_body_mb}")
    verify(model_path)  # refuse a truncated or tampered model before any worker starts
    model_path = os.path.abspath(model_path)
    prom_dir = tempfile.mkdtemp(prefix="parml-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = prom_dir
    app_kwargs = {"name": name, "n_threads": threads_per_worker,
                  "max_body_bytes": int(max_body_mb * (1 << 20))}

    def child_exit(server, worker):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)

    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
        "preload_app": False,
        "timeout": timeout,
        "graceful_timeout": timeout,
        "loglevel": log_level,
        "child_exit": child_exit,
        "proc_name": "parml-serve",
        # gunicorn >= 23's control socket sits at one path shared by every server on the
        # machine; parml serve needs none
        "control_socket_disable": True,
    }

    class _Server(BaseApplication):
        def load_config(self):
            for k, v in options.items():
                if k in self.cfg.settings:  # control_socket_disable: gunicorn >= 23 only
                    self.cfg.set(k, v)

        def load(self):
            from ._app import create_app
            return create_app(model_path, **app_kwargs)

    master = os.getpid()
    try:
        _Server().run()
    finally:
        # workers leave run() through this block too (SystemExit after fork): only the master
        # may remove the directory every worker writes its metrics to
        if os.getpid() == master:
            shutil.rmtree(prom_dir, ignore_errors=True)
