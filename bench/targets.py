"""The servers under test, each started on a free loopback port and stopped afterwards.

flask-svc itself is started through ``harness.server.running_server`` (the same launcher the integration
tests use); the comparison servers through ``launched``. Every target serves ``/livez`` and ``/readyz``; the Python
ones also ``POST /api/v1/analyze``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.net import free_port, process_gone, wait_until_ready
from harness.proc import tree
from harness.server import ROOT, running_server
from service.names import READYZ

BENCH_VENV = ROOT / ".tools" / "bench-venv"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"
THREADS = 4  # gunicorn gthread threads per worker: the service's default, used for bare Flask too
# gunicorn settings shared by flask-svc (its defaults) and bare Flask.
GUNICORN_FLAGS = ("--worker-class=gthread", f"--threads={THREADS}", "--keep-alive=5", "--timeout=30")


@dataclass
class Target:
    key: str  # svc-on, svc-default, svc-off, bare, fastapi, nginx
    label: str
    port: int
    pid: int
    endpoints: tuple[str, ...]
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def poll_ready(port: int, proc: subprocess.Popen[str], timeout: float = 30.0, path: str = READYZ) -> float:
    """Poll every 5 ms until ``path`` answers 200; returns the monotonic time it did."""
    wait_until_ready(port, path, gone=process_gone(proc), timeout=timeout, interval=0.005)
    return time.monotonic()


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for child in tree(proc.pid)[1:]:
                child.kill()
            proc.kill()
            proc.wait()


@contextmanager
def launched(
    cmd: Sequence[str],
    port: int,
    env: Mapping[str, str] | None = None,
    stop_signal: int = signal.SIGTERM,
    path: str = "/readyz",
) -> Iterator[subprocess.Popen[str]]:
    """A server process with its output in a temp log; waits for /readyz, shows the log's tail if it fails."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            list(cmd), cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        try:
            try:
                poll_ready(port, proc, path=path)
            except (RuntimeError, TimeoutError) as error:
                log.seek(0)
                raise RuntimeError(f"{error}\n{log.read()[-3000:]}") from None
            yield proc
        finally:
            stop(proc, stop_signal)


# What every Python server answers (nginx only answers /livez).
PYTHON_ENDPOINTS = ("livez", "readyz", "analyze-1k", "analyze-100k")

SVC_VARIANTS = {
    # key: (label, tracing, env)
    "svc-on": ("flask-svc, all on", True, {"LOG_LEVEL": "info"}),
    # The chart's default: 10 % of new traces, a caller's sampling decision kept.
    "svc-sampled": (
        "flask-svc, tracing 10 %",
        True,
        {"LOG_LEVEL": "info", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    ),
    "svc-default": ("flask-svc, defaults", False, {"LOG_LEVEL": "info"}),
    "svc-off": ("flask-svc, all off", False, {"LOG_LEVEL": "warning", "FLASK_SVC_METRICS": "false"}),
}


def svc_env(workers: int, variant: str, tracing_endpoint: str | None = None) -> dict[str, str]:
    """flask-svc's environment for a variant: all on (metrics, access log, tracing at 100 %), its defaults (metrics
    and access log, no tracing), or all off (no metrics, no access log, no tracing)."""
    _label, tracing, extra = SVC_VARIANTS[variant]
    env = {"WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(THREADS), "LOG_FORMAT": "json", **extra}
    if tracing:
        if not tracing_endpoint:
            raise ValueError(f"{variant} needs an OTLP endpoint")
        env.setdefault("OTEL_TRACES_SAMPLER", "always_on")
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=tracing_endpoint, OTEL_SERVICE_NAME="flask-svc-bench")
    return env


@contextmanager
def flask_svc(workers: int, variant: str = "svc-default", tracing_endpoint: str | None = None) -> Iterator[Target]:
    # Logs go to a file, as for the other servers: piped, the bench process would spend CPU reading them.
    with running_server(svc_env(workers, variant, tracing_endpoint), log_to_file=True) as server:
        label = SVC_VARIANTS[variant][0]
        target = Target(variant, label, server.port, server.process.pid, PYTHON_ENDPOINTS)
        target.extra["metrics_port"] = server.metrics_port
        yield target


@contextmanager
def bare_flask(workers: int) -> Iterator[Target]:
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", *GUNICORN_FLAGS, f"--workers={workers}", f"--bind=127.0.0.1:{port}"]
    if os.path.isdir("/dev/shm"):
        cmd.append("--worker-tmp-dir=/dev/shm")
    cmd += ["--no-control-socket", "bench.apps.bare_flask:app"]
    with launched(cmd, port) as proc:
        yield Target("bare", "bare Flask", port, proc.pid, PYTHON_ENDPOINTS)


def fastapi_available() -> bool:
    return BENCH_PYTHON.exists()


@contextmanager
def fastapi(workers: int) -> Iterator[Target]:
    port = free_port()
    cmd = [str(BENCH_PYTHON), "-m", "uvicorn", "bench.apps.fastapi_app:app", "--host=127.0.0.1", f"--port={port}"]
    cmd += [f"--workers={workers}", "--no-access-log", "--log-level=warning"]
    with launched(cmd, port, env={"PYTHONPATH": str(ROOT)}) as proc:
        yield Target("fastapi", "FastAPI/uvicorn", port, proc.pid, PYTHON_ENDPOINTS)


NGINX_CONF = Path(__file__).with_name("nginx.conf")  # a str.format template


def nginx_binary() -> str | None:
    for candidate in ("/usr/sbin/nginx", "/usr/bin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


@contextmanager
def nginx(workers: int) -> Iterator[Target]:
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (make setup-bench-full installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="flask-svc-nginx-") as tmp:
        conf = Path(tmp, "nginx.conf")
        conf.write_text(NGINX_CONF.read_text().format(workers=workers, tmp=tmp, port=port))
        with launched(
            [binary, "-p", tmp, "-c", str(conf), "-e", f"{tmp}/error.log"], port, stop_signal=signal.SIGQUIT
        ) as proc:
            yield Target("nginx", "nginx static", port, proc.pid, ("livez",))
