"""Start the real service — gunicorn via `python -m service` — on free loopback ports, for tests and the bench; start
any other server the same way (``launched``: the bench's baselines, MLServer) and stop one (``stop``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness.net import free_port, process_gone, wait_until_ready
from harness.proc import tree
from service.names import READYZ

ROOT = Path(__file__).resolve().parents[1]


def _children(master: int) -> list[tuple[psutil.Process, list[str]]]:
    """The master's living children with their command lines (an exited one awaiting its reaping is left out)."""
    found = []
    for child in psutil.Process(master).children():
        try:
            found.append((child, child.cmdline()))
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


def workers_of(master: int) -> list[psutil.Process]:
    """gunicorn's workers: the master's children (it serves /metrics itself)."""
    return [child for child, _cmdline in _children(master)]


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    metrics_port: int
    lines: list[str] = field(default_factory=list)  # stdout, unless it goes to log_file
    log_file: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def json_logs(self) -> list[dict[str, object]]:
        records = []
        lines = self.log_file.read_text().splitlines() if self.log_file else list(self.lines)
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def wait_for_log(self, predicate: Callable[[dict[str, object]], bool], timeout: float = 5) -> dict[str, object]:
        """The first JSON log record matching ``predicate``; gunicorn logs access after the response is sent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.json_logs():
                if predicate(record):
                    return record
            time.sleep(0.02)
        raise AssertionError("no matching log line")

    def workers(self) -> list[psutil.Process]:
        return workers_of(self.process.pid)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def _pump(stream: object, sink: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.append(line.rstrip("\n"))


def wait_ready(server: Server, timeout: float = 20) -> None:
    """Until /readyz answers 200; fails at once if the process exits first."""
    wait_until_ready(server.port, gone=process_gone(server.process), timeout=timeout)


@contextmanager
def running_server(
    env: Mapping[str, str] | None = None, ready: bool = True, log_to_file: bool = False
) -> Iterator[Server]:
    """The service as a child process with its own temp metrics dir; stopped (SIGTERM, then kill) afterwards.

    Its output is read line by line into ``Server.lines``, or with ``log_to_file`` written to a file instead (no
    reader thread in this process: what the benchmarks want)."""
    port, metrics_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="flask-svc-test-") as tmp:
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FLASK_SVC_", "PROMETHEUS_", "GUNICORN_"))
        }
        full_env.update(
            HOST="127.0.0.1",
            PORT=str(port),
            METRICS_PORT=str(metrics_port),
            PROMETHEUS_MULTIPROC_DIR=os.path.join(tmp, "metrics"),
            FLASK_SVC_BATCH_DATA_DIR=os.path.join(tmp, "batch"),  # never a directory another run shares
            LOG_FORMAT="json",
            LOG_LEVEL="debug",
            PYTHONUNBUFFERED="1",
        )
        full_env.update(env or {})
        log_file = Path(tmp, "server.log") if log_to_file else None
        output = log_file.open("w") if log_file else subprocess.PIPE
        process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=ROOT,
            env=full_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        server = Server(process, port, metrics_port, log_file=log_file)
        if log_file is None:
            threading.Thread(target=_pump, args=(process.stdout, server.lines), daemon=True).start()
        else:
            output.close()  # type: ignore[union-attr]  # the child holds its own copy
        try:
            if ready:
                wait_ready(server)
            yield server
        finally:
            stop(process)


def stop(process: subprocess.Popen[Any], stop_signal: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Ask a server to stop; past ``timeout``, kill it and every process it started."""
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            # The root first: a live gunicorn master (or MLServer's parent) would fork replacements for the
            # children killed before it, and those would not be in the snapshot.
            for member in tree(process.pid):
                with contextlib.suppress(psutil.NoSuchProcess):  # it may exit meanwhile
                    member.kill()
            process.wait()


@contextmanager
def launched(
    cmd: Sequence[str],
    port: int,
    env: Mapping[str, str] | None = None,
    stop_signal: int = signal.SIGTERM,
    path: str = READYZ,
) -> Iterator[subprocess.Popen[str]]:
    """Any other server (the bench's baselines, MLServer), its output in a temp file, until ``path`` on ``port``
    answers 200 (polled every 5 ms; the log's tail in the error when it never does); stopped afterwards."""
    with tempfile.TemporaryFile("w+") as log:
        env = {**os.environ, **(env or {})}
        process = subprocess.Popen(list(cmd), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            try:
                wait_until_ready(port, path, gone=process_gone(process), interval=0.005)
            except (RuntimeError, TimeoutError) as error:
                log.seek(0)
                raise RuntimeError(f"{error}\n{log.read()[-3000:]}") from None
            yield process
        finally:
            stop(process, stop_signal, 20)
