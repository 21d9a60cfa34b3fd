"""The servers under test, each on a free loopback port and stopped afterwards: flask-svc through
``harness.server.running_server`` (the tests' launcher), the comparison servers through ``launched``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.report import ENDPOINT_LABELS
from harness.net import free_port, process_gone, wait_until_ready
from harness.proc import tree
from harness.server import ROOT, running_server
from service.names import READYZ

BENCH_VENV = ROOT / ".tools" / "bench-venv"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"
THREADS = 4  # gunicorn gthread threads per worker: the service's default, used for bare Flask too
# gunicorn settings shared by flask-svc (its defaults) and bare Flask.
GUNICORN_FLAGS = ("--worker-class=gthread", f"--threads={THREADS}", "--keep-alive=5", "--timeout=30")
PYTHON_ENDPOINTS = tuple(ENDPOINT_LABELS)  # what every Python server answers; nginx only /livez

# flask-svc's variants: whether it traces (to the OTLP sink it is given), and its environment.
SVC_VARIANTS: dict[str, tuple[bool, dict[str, str]]] = {
    "svc-on": (True, {"LOG_LEVEL": "info"}),
    # The chart's default: 10 % of new traces, a caller's sampling decision kept.
    "svc-sampled": (
        True,
        {"LOG_LEVEL": "info", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    ),
    "svc-default": (False, {"LOG_LEVEL": "info"}),
    "svc-off": (False, {"LOG_LEVEL": "warning", "FLASK_SVC_METRICS": "false"}),
}
TRACED = tuple(key for key, (tracing, _env) in SVC_VARIANTS.items() if tracing)


@dataclass
class Target:
    key: str  # a key of report.TARGET_LABELS
    port: int
    pid: int
    endpoints: tuple[str, ...] = PYTHON_ENDPOINTS
    metrics_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def poll_ready(port: int, proc: subprocess.Popen[str], timeout: float = 30.0, path: str = READYZ) -> float:
    """Poll every 5 ms until ``path`` answers 200; returns the monotonic time it did."""
    wait_until_ready(port, path, gone=process_gone(proc), timeout=timeout, interval=0.005)
    return time.monotonic()


@contextmanager
def launched(
    cmd: Sequence[str],
    port: int,
    env: Mapping[str, str] | None = None,
    stop_signal: int = signal.SIGTERM,
    path: str = READYZ,
) -> Iterator[subprocess.Popen[str]]:
    """A server process with its output in a temp log; waits for ``path``, shows the log's tail if it fails."""
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
            if proc.poll() is None:
                proc.send_signal(stop_signal)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    for child in tree(proc.pid)[1:]:
                        child.kill()
                    proc.kill()
                    proc.wait()


def svc_env(workers: int, variant: str, tracing_endpoint: str | None = None) -> dict[str, str]:
    tracing, extra = SVC_VARIANTS[variant]
    env = {"WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(THREADS), "LOG_FORMAT": "json", **extra}
    if tracing:
        if not tracing_endpoint:
            raise ValueError(f"{variant} needs an OTLP endpoint")
        env.setdefault("OTEL_TRACES_SAMPLER", "always_on")
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=tracing_endpoint, OTEL_SERVICE_NAME="flask-svc-bench")
    return env


@contextmanager
def flask_svc(workers: int, variant: str, tracing_endpoint: str | None = None) -> Iterator[Target]:
    # Logs go to a file, as for the other servers: piped, the bench process would spend CPU reading them.
    with running_server(svc_env(workers, variant, tracing_endpoint), log_to_file=True) as server:
        yield Target(variant, server.port, server.process.pid, metrics_port=server.metrics_port)


@contextmanager
def bare_flask(workers: int) -> Iterator[Target]:
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", *GUNICORN_FLAGS, f"--workers={workers}", f"--bind=127.0.0.1:{port}"]
    if os.path.isdir("/dev/shm"):
        cmd.append("--worker-tmp-dir=/dev/shm")
    with launched([*cmd, "--no-control-socket", "bench.apps.bare_flask:app"], port) as proc:
        yield Target("bare", port, proc.pid)


@contextmanager
def fastapi(workers: int) -> Iterator[Target]:
    port = free_port()
    cmd = [str(BENCH_PYTHON), "-m", "uvicorn", "bench.apps.fastapi_app:app", "--host=127.0.0.1", f"--port={port}"]
    cmd += [f"--workers={workers}", "--no-access-log", "--log-level=warning"]
    with launched(cmd, port, env={"PYTHONPATH": str(ROOT)}) as proc:
        yield Target("fastapi", port, proc.pid)


def nginx_binary() -> str | None:
    return next((path for path in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.access(path, os.X_OK)), None)


@contextmanager
def nginx(workers: int) -> Iterator[Target]:
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (make setup-bench-full installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="flask-svc-nginx-") as tmp:
        conf = Path(tmp, "nginx.conf")
        conf.write_text(Path(__file__).with_name("nginx.conf").read_text().format(workers=workers, tmp=tmp, port=port))
        cmd = [binary, "-p", tmp, "-c", str(conf), "-e", f"{tmp}/error.log"]
        with launched(cmd, port, stop_signal=signal.SIGQUIT) as proc:
            yield Target("nginx", port, proc.pid, endpoints=("livez",))


def missing(key: str) -> str | None:
    """Why ``key`` cannot run on this machine, or None."""
    if key == "fastapi" and not BENCH_PYTHON.exists():
        return "no bench venv (make setup-bench-full)"
    if key == "nginx" and nginx_binary() is None:
        return "nginx is not installed (make setup-bench-full)"
    return None


def start(key: str, workers: int, sink: str | None = None) -> AbstractContextManager[Target]:
    """Any target by its key; traced flask-svc variants export to ``sink``."""
    if key in SVC_VARIANTS:
        return flask_svc(workers, key, sink)
    return {"bare": bare_flask, "fastapi": fastapi, "nginx": nginx}[key](workers)
