"""The master's side of the metrics: the multiprocess directory, and ``/metrics`` served by a process of its own.

Under gunicorn every worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``. The metrics server merges
the files of all workers, live and dead, so a scrape never queues behind application requests and counters never go
backwards when a worker is replaced.

It runs as a separate process, not as a thread of the master: the master forks a worker at start and again whenever
one is replaced, and a fork taken while another thread runs can leave the child waiting forever on a lock that thread
held (Python 3.12 warns about exactly this). The master therefore runs no thread at all. The server is spawned —
``subprocess``, so fork and exec of a fresh interpreter, with nothing inherited but the environment — once the master
is ready; the master starts it again should it die (``MetricsProcess.keep_running``, from its main loop), stops it
last when it exits, and it stops by itself should the master die without stopping it.

    python -m service.server.metrics_server HOST PORT PARENT   # what the master runs; prints "ready" once it listens
"""

from __future__ import annotations

import os
import selectors
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

# subprocess and service.privatedirs (pathlib) are imported where the master uses them: the server process, run from
# this module, needs neither (a third of a MiB of private memory less).

READY = "ready"
_START_TIMEOUT = 10.0  # seconds for the interpreter to start and bind
_STOP_TIMEOUT = 5.0
_PARENT_CHECK_SECONDS = 1.0
# After a failed start the next try waits this long, doubling up to the maximum: a port someone else took must not
# make the master spawn interpreters back to back.
_RETRY_FIRST_SECONDS = 1.0
_RETRY_MAX_SECONDS = 30.0


def reset_multiprocess_dir(path: str) -> None:
    """Start from an empty directory: files left by an earlier run would be summed into this one's counters.
    Only a private directory is emptied (``service.privatedirs``): never one a planted symbolic link points to."""
    from service.privatedirs import ensure_directory

    for entry in os.scandir(ensure_directory(path)):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's live gauges; its counters stay in the files so totals never go backwards."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid)  # type: ignore[no-untyped-call]


class MetricsProcess:
    """The metrics server as a child of the master: started, kept running, stopped. Used by the master only."""

    def __init__(self, host: str, port: int, log: Any) -> None:
        self.host = host
        self.port = port
        self.log = log  # gunicorn's error log
        self.process: subprocess.Popen[str] | None = None
        self.retry_after = 0.0  # monotonic time before which a failed start is not tried again
        self.retry_wait = _RETRY_FIRST_SECONDS

    def start(self) -> None:
        """Spawn the server and wait until it listens; raises ``RuntimeError`` (with its exit code) if it cannot."""
        import subprocess

        process = subprocess.Popen(
            [sys.executable, "-m", __name__, self.host, str(self.port), str(os.getpid())],
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
            _stop(process)
            raise RuntimeError(
                f"the metrics server did not start on {self.host}:{self.port} (exit code {process.returncode})"
            )
        self.process = process
        self.log.info("metrics on http://%s:%d/metrics (pid %d)", self.host, self.port, process.pid)

    def keep_running(self) -> None:
        """Start the server again if it has exited (called from the master's loop: at least once a second).

        gunicorn's loop may have reaped it already (it waits for any child): ``poll`` reports it gone all the same."""
        if self.process is None or self.process.poll() is None or time.monotonic() < self.retry_after:
            return
        # Its exit status went to whoever reaped it first: gunicorn logs it (debug) when that was its loop.
        self.log.warning("the metrics server (pid %d) has exited: starting it again", self.process.pid)
        try:
            self.start()
        except RuntimeError as error:
            self.retry_after = time.monotonic() + self.retry_wait
            self.log.error("%s; trying again in %.0f s", error, self.retry_wait)
            self.retry_wait = min(self.retry_wait * 2, _RETRY_MAX_SECONDS)
        else:
            self.retry_wait = _RETRY_FIRST_SECONDS

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if it has not gone within a few seconds."""
    import subprocess

    process.terminate()
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve(host: str, port: int, parent: int) -> None:
    """The server process: listen, say so, and live as long as the master does."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    from service.request_totals import WithRequestTotals

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
