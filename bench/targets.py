"""The servers under test, each on a free loopback port and stopped afterwards, through the tests' launchers:
flask-svc by ``harness.server.running_server``, the others by ``harness.server.launched``. One table says what each is
and runs."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from bench.report import ENDPOINT_LABELS
from harness.net import free_port
from harness.server import ROOT, launched, running_server

BENCH_VENV = ROOT / ".tools" / "bench-venv"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"
THREADS = 4  # gunicorn gthread threads per worker: the service's default, used for bare Flask too
GUNICORN_FLAGS = ("--worker-class=gthread", f"--threads={THREADS}", "--keep-alive=5", "--timeout=30")
SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}  # the chart's default
# key → (what it is, in the report's settings; flask-svc's environment, or None for another server), in start order.
TARGETS: dict[str, tuple[str, dict[str, str] | None]] = {
    "svc-on": ("python -m service (gthread, 4 threads): metrics, JSON access log (LOG_LEVEL=info), OTLP/HTTP tracing "
               "at 100 % (always_on) to a loopback sink", {"LOG_LEVEL": "info", "OTEL_TRACES_SAMPLER": "always_on"}),
    "svc-sampled": ("the same with OTEL_TRACES_SAMPLER=parentbased_traceidratio at 0.1 (the chart's default)",
                    {"LOG_LEVEL": "info", **SAMPLED}),
    "svc-default": ("the same with tracing off: what the image runs unless told otherwise", {"LOG_LEVEL": "info"}),
    "svc-off": ("FLASK_SVC_METRICS=false, LOG_LEVEL=warning (no access log), tracing off",
                {"LOG_LEVEL": "warning", "FLASK_SVC_METRICS": "false"}),
    "bare": (f"gunicorn {' '.join(GUNICORN_FLAGS)}, no access log, bench/apps/bare_flask.py", None),
    "fastapi": ("uvicorn (uvloop, httptools), no access log, bench/apps/fastapi_app.py", None),
    "nginx": ("return 200 from a location block, access log off, worker_processes = workers", None),
}  # fmt: skip
TRACED = ("svc-on", "svc-sampled")  # exporting to the OTLP sink they are given


@dataclass
class Target:
    key: str  # a key of TARGETS
    port: int
    pid: int
    endpoints: tuple[str, ...] = tuple(ENDPOINT_LABELS)  # every Python server answers them all; nginx only /livez
    metrics_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def svc_env(workers: int, variant: str, tracing_endpoint: str | None = None) -> dict[str, str]:
    env = {"WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(THREADS), "LOG_FORMAT": "json"}
    env |= TARGETS[variant][1] or {}
    if variant in TRACED:
        if not tracing_endpoint:
            raise ValueError(f"{variant} needs an OTLP endpoint")
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=tracing_endpoint, OTEL_SERVICE_NAME="flask-svc-bench")
    return env


def nginx_binary() -> str | None:
    return next((path for path in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.access(path, os.X_OK)), None)


def missing(key: str) -> str | None:
    """Why ``key`` cannot run on this machine, or None."""
    if key == "fastapi" and not BENCH_PYTHON.exists():
        return "no bench venv (make setup-bench-full)"
    return "nginx is not installed (make setup-bench-full)" if key == "nginx" and nginx_binary() is None else None


@contextmanager
def start(key: str, workers: int, sink: str | None = None) -> Iterator[Target]:
    """Any target by its key; traced flask-svc variants export to ``sink``."""
    if TARGETS[key][1] is not None:  # logs to a file, as the others: piped, the bench would spend CPU reading them
        with running_server(svc_env(workers, key, sink), log_to_file=True) as server:
            yield Target(key, server.port, server.process.pid, metrics_port=server.metrics_port)
        return
    if reason := missing(key):
        raise RuntimeError(reason)
    port, stop, endpoints = free_port(), signal.SIGTERM, Target.endpoints
    # nginx alone needs a directory (kept out of the others' timed starts)
    with tempfile.TemporaryDirectory(prefix="flask-svc-nginx-") if key == "nginx" else nullcontext("") as tmp:
        if key == "bare":
            shm = ["--worker-tmp-dir=/dev/shm"] if os.path.isdir("/dev/shm") else []
            cmd = [sys.executable, "-m", "gunicorn", *GUNICORN_FLAGS, f"--workers={workers}"]
            cmd += [f"--bind=127.0.0.1:{port}", *shm, "--no-control-socket", "bench.apps.bare_flask:app"]
        elif key == "fastapi":
            cmd = [str(BENCH_PYTHON), "-m", "uvicorn", "bench.apps.fastapi_app:app", "--host=127.0.0.1"]
            cmd += [f"--port={port}", f"--workers={workers}", "--no-access-log", "--log-level=warning"]
        else:
            conf, template = Path(tmp, "nginx.conf"), Path(__file__).with_name("nginx.conf").read_text()
            conf.write_text(template.format(workers=workers, tmp=tmp, port=port))
            cmd = [nginx_binary() or "nginx", "-p", tmp, "-c", str(conf), "-e", f"{tmp}/error.log"]
            stop, endpoints = signal.SIGQUIT, ("livez",)
        with launched(cmd, port, {"PYTHONPATH": str(ROOT)} if key == "fastapi" else None, stop) as proc:
            yield Target(key, port, proc.pid, endpoints)
