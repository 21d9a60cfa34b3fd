"""The master's side of the metrics: the multiprocess directory, and ``/metrics`` served by a process of its own.

Under gunicorn every worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``. The metrics server merges
the files of all workers, live and dead, so a scrape never queues behind application requests and counters never go
backwards when a worker is replaced.

It runs as a separate process, not as a thread of the master: the master forks a worker at start and again whenever
one is replaced, and a fork taken while another thread runs can leave the child waiting forever on a lock that thread
held (Python 3.12 warns about exactly this). The master therefore runs no thread at all. The server is spawned —
``subprocess``, so fork and exec of a fresh interpreter, with nothing inherited but the environment — once the master
is ready, is stopped when it exits, and stops by itself should the master die without stopping it.

    python -m service.metrics_server HOST PORT   # what the master runs; prints "ready" once it listens
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from prometheus_client.metrics_core import Metric

from service.privatedirs import ensure_directory

READY = "ready"
_START_TIMEOUT = 10.0  # seconds for the interpreter to start and bind
_STOP_TIMEOUT = 5.0
_PARENT_CHECK_SECONDS = 1.0


def reset_multiprocess_dir(path: str) -> None:
    """Start from an empty directory: files left by an earlier run would be summed into this one's counters.
    Only a private directory is emptied (``service.privatedirs``): never one a planted symbolic link points to."""
    for entry in os.scandir(ensure_directory(path)):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's live gauges; its counters stay in the files so totals never go backwards."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid)  # type: ignore[no-untyped-call]


def start(host: str, port: int) -> subprocess.Popen[str]:
    """Spawn the server and wait until it listens; raises ``RuntimeError`` (with its error) if it cannot."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service.metrics_server", host, str(port), str(os.getpid())],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        answered = selector.select(_START_TIMEOUT)
    line = process.stdout.readline().strip() if answered else ""
    process.stdout.close()
    if line != READY:
        stop(process)
        raise RuntimeError(f"the metrics server did not start on {host}:{port} (exit code {process.returncode})")
    return process


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if it has not gone within a few seconds."""
    process.terminate()
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# flask_http_request_total (method, status) is the request duration histogram's count summed over routes: derived
# when read instead of written beside the histogram (one shared-memory write less per request). Names, help and
# labels are prometheus-flask-exporter's, as before.
REQUEST_DURATION = "flask_http_request_duration_seconds"
REQUEST_TOTAL = "flask_http_request"
REQUEST_TOTAL_HELP = "Total number of HTTP requests"


class WithRequestTotals:
    """A collector: what ``source`` collects, plus ``flask_http_request_total`` derived from it (nothing until a
    request was counted, as a labelled counter without children)."""

    def __init__(self, source: Callable[[], Iterable[Metric]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import CounterMetricFamily

        totals: dict[tuple[str, str], float] = {}
        for family in self.source():
            if family.name == REQUEST_DURATION:
                for sample in family.samples:
                    if sample.name == REQUEST_DURATION + "_count":
                        key = (sample.labels["method"], sample.labels["status"])
                        totals[key] = totals.get(key, 0.0) + sample.value
            yield family
        if totals:
            derived = CounterMetricFamily(REQUEST_TOTAL, REQUEST_TOTAL_HELP, labels=("method", "status"))
            for labels, value in sorted(totals.items()):
                derived.add_metric(labels, value)
            yield derived


def serve(host: str, port: int, parent: int) -> None:
    """The server process: listen, say so, and live as long as the master does."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    merged = MultiProcessCollector(None)  # type: ignore[no-untyped-call]
    registry.register(WithRequestTotals(merged.collect))
    start_http_server(port, addr=host, registry=registry)
    print(READY, flush=True)
    # SIGTERM's default action ends the process: no handler. A master killed outright cannot stop this process,
    # but it is then re-parented, which this loop notices.
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
