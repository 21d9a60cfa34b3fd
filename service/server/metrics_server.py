"""The master's side of the metrics: the multiprocess directory, and ``/metrics`` served from the master's own loop.

Under gunicorn every worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``. The master merges the files
of all workers, live and dead, so a scrape never queues behind application requests and counters never go backwards
when a worker is replaced.

The master serves the port itself, in its one thread. Not from a thread: the master forks a worker at start and
again whenever one is replaced, and a fork taken while another thread runs can leave the child waiting forever on a
lock that thread held (Python 3.12 warns about exactly this). Not from a process of its own either: a second
interpreter was 15 MB of an idle pod's 116 (RSS). gunicorn's loop waits up to a second a round for the signals its
handlers queue (``Arbiter.wait_for_signals``); ``MetricsServer.serve_in`` replaces that wait with one that serves the
port meanwhile and ends as soon as a signal arrives (``signal.set_wakeup_fd``). Nothing a client does can hold it:
every socket is non-blocking and capped (``service.server.metrics_port``). While the master stops, the port is served
between its reaps (every 0.1 s), so a scrape during the drain still sees every worker; it closes last (``on_exit``).
A worker closes its copies of the port's descriptors as soon as it is forked (``close_in_worker``).

Should serving fail all the same (a bug, a broken listener), the error is logged and the port opened again on a
later round, the pause doubling after each failed try (a port someone else took must not be retried back to back).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time
from collections.abc import Callable, Iterable
from functools import partial
from queue import Empty, SimpleQueue
from typing import Any

from service.server.metrics_port import MetricsPort, Respond

# After a failed start the next try waits this long, doubling up to the maximum.
_RETRY_FIRST_SECONDS = 1.0
_RETRY_MAX_SECONDS = 30.0


def reset_multiprocess_dir(path: str) -> None:
    """Start from an empty directory: files left by an earlier run would be summed into this one's counters.
    Only a private directory is emptied (``service.privatedirs``): never one a planted symbolic link points to."""
    import shutil

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


class MergedOncePerRound:
    """The workers' files merged at most once a round of the master's loop, however many scrapes that round
    answers: the master's CPU per round stays one merge. ``forget`` ends the round (nothing is kept between rounds,
    so every round's scrapes see the files as they are)."""

    def __init__(self) -> None:
        self.merge: Callable[[], Iterable[Any]] | None = None  # the collector's own collect, set by merged_metrics
        self.merged: list[Any] | None = None

    def __call__(self) -> list[Any]:
        assert self.merge is not None
        if self.merged is None:
            self.merged = list(self.merge())
        return self.merged

    def forget(self) -> None:
        self.merged = None


def merged_metrics(once_per_round: MergedOncePerRound | None = None) -> Respond:
    """What a scrape gets: every worker's files merged (prometheus_client's multiprocess collector), with
    ``flask_http_request_total`` derived from them, in the format the scraper asks for (``exposition``); with
    ``once_per_round``, merged once for all the scrapes of a round."""
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.registry import CollectorRegistry

    from service.request_totals import WithRequestTotals
    from service.server.exposition import answer

    registry = CollectorRegistry()
    merged = MultiProcessCollector(None)  # type: ignore[no-untyped-call]
    collect: Callable[[], Iterable[Any]] = merged.collect
    if once_per_round is not None:
        once_per_round.merge, collect = collect, once_per_round
    registry.register(WithRequestTotals(collect))
    return partial(answer, registry)


class MetricsServer:
    """The port in the master: opened, served from the master's loop, opened again after a failure, closed."""

    def __init__(self, host: str, port: int, log: Any = None) -> None:
        self.host = host
        self.port = port
        self.log = log  # gunicorn's error log: given once there is one, before ``start``
        self.open: MetricsPort | None = None
        self.respond: Respond | None = None
        self.once_per_round = MergedOncePerRound()
        self.wakeup: tuple[socket.socket, socket.socket] | None = None  # (read, write): signals end a wait
        self.retry_after = 0.0  # monotonic time before which a failed start is not tried again
        self.retry_wait = _RETRY_FIRST_SECONDS

    def start(self) -> None:
        """Listen; raises ``RuntimeError`` naming the address if it cannot."""
        if self.respond is None:
            self.respond = merged_metrics(self.once_per_round)
        try:
            port = MetricsPort(self.host, self.port, self.respond)
        except OSError as error:
            raise RuntimeError(
                f"the metrics server did not start on {self.host}:{self.port} ({error.strerror or error})"
            ) from None
        if self.wakeup is None:
            self.wakeup = socket.socketpair()
            for end in self.wakeup:
                end.setblocking(False)
            signal.set_wakeup_fd(self.wakeup[1].fileno(), warn_on_full_buffer=False)
        port.wake_on(self.wakeup[0].fileno())
        self.open = port
        self.log.info("metrics on http://%s:%d/metrics (pid %d)", self.host, self.port, os.getpid())

    def serve_in(self, arbiter: Any) -> None:
        """Have the master's loop serve the port: in its wait for signals, and between reaps while it stops."""
        arbiter.wait_for_signals = partial(self.wait_for_signals, arbiter.SIG_QUEUE, arbiter.WAKEUP_REQUEST)
        reap_workers = arbiter.reap_workers

        def reap_workers_and_serve() -> None:
            reap_workers()
            self.serve(0)

        arbiter.reap_workers = reap_workers_and_serve

    def wait_for_signals(self, queued: SimpleQueue[int], wakeup_request: int, timeout: float = 1.0) -> list[int]:
        """gunicorn's wait: the signals its handlers queued, waiting up to ``timeout`` for the first (a wake-up
        request ends the wait and is no signal); the port is served meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            signals = []
            try:
                while True:
                    signals.append(queued.get_nowait())
            except Empty:
                pass
            remaining = deadline - time.monotonic()
            if signals or remaining <= 0:
                return [sig for sig in signals if sig != wakeup_request]
            self.serve(remaining)

    def serve(self, timeout: float) -> None:
        """Serve the port for up to ``timeout`` seconds, less if a signal arrives."""
        if self.open is None:
            self._reopen_when_due()
        if self.open is None:
            assert self.wakeup is not None
            wait = max(0.0, min(timeout, self.retry_after - time.monotonic()))
            if select.select([self.wakeup[0]], [], [], wait)[0]:
                self.wakeup[0].recv(4096)
            return
        try:
            self.open.serve(timeout)
        except Exception:
            self.log.error("the metrics server failed: opening it again", exc_info=True)
            self._close_port()
        finally:
            self.once_per_round.forget()

    def _reopen_when_due(self) -> None:
        if time.monotonic() < self.retry_after:
            return
        try:
            self.start()
        except RuntimeError as error:
            self.retry_after = time.monotonic() + self.retry_wait
            self.log.error("%s; trying again in %.0f s", error, self.retry_wait)
            self.retry_wait = min(self.retry_wait * 2, _RETRY_MAX_SECONDS)
        else:
            self.retry_wait = _RETRY_FIRST_SECONDS

    def _close_port(self) -> None:
        if self.open is not None:
            self.open.close()
            self.open = None

    def stop(self) -> None:
        """Close the port (the master's last step)."""
        self._close_port()
        if self.wakeup is not None:
            signal.set_wakeup_fd(-1)
            for end in self.wakeup:
                end.close()
            self.wakeup = None

    def close_in_worker(self) -> None:
        """In a worker just forked: its copies of the port's descriptors closed (the master's stay open), so that a
        connection the master closes is closed and a port the master gave up is free."""
        if self.wakeup is not None:
            signal.set_wakeup_fd(-1)  # gunicorn's worker sets its own
        self._close_port()
        for end in self.wakeup or ():
            end.close()
        self.wakeup = None
