"""How the server stops: every step, in order. Nothing else in the service stops what the server runs.

SIGTERM reaches the master (the kubelet sends it once the pod's preStop sleep is over).

In the master:
1. gunicorn closes the listening sockets and passes SIGTERM to each worker.

In each worker:
2. Readiness turns 503 at once (``drain_on_sigterm``): the handler sets a flag and hands over to gunicorn's, which
   ends the worker's loop.
3. gunicorn finishes the requests in flight within ``GUNICORN_GRACEFUL_TIMEOUT``; a connection that has sent nothing
   closes at once, a request head still arriving gets 2 s (``service.server.worker``).
4. ``stop_worker``: what the app's features started, last started first (``Lifecycle.on_stop``) — the batch
   reconciler ends its loop and gives up its lock or Lease, so another worker or pod takes over without waiting.
5. ``stop_worker``: tracing, last in the worker so that it still carries what steps 3 and 4 did: the queued spans
   flushed (within 2 s) and the exporter closed. The worker logs the threads it leaves (the request pool's only),
   and exits 0.

In the master, once every worker has exited (or been killed at the graceful timeout):
6. ``stop_master``: the metrics server, last, so a scrape during the drain still sees every worker; then the master
   exits 0. Stage processes of batch jobs (the local runner's) are not stopped: they go on and report by their files.

A stop is logged (``stopped <name>``) once it has returned; one that raises is logged and the next still runs.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from service.lifecycle import Lifecycle
from service.names import LIFECYCLE_EXTENSION
from service.tracing import tracing_of

if TYPE_CHECKING:
    from flask import Flask

    from service.server.metrics_server import MetricsServer

log = logging.getLogger(__name__)
_REQUEST_POOL = "ThreadPoolExecutor"  # the prefix of gthread's request threads' names


def drain_on_sigterm(state: Lifecycle) -> None:
    """Step 2: chain a SIGTERM handler in front of gunicorn's (called from ``post_worker_init``).

    A signal handler runs between two bytecodes of whatever the main thread was doing, possibly inside a lock it
    holds, so it takes no lock and writes nothing (the worker's loop logs the drain once it sees it)."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        state.begin_drain()
        if callable(previous):
            previous(signum, frame)  # gunicorn's: clears the worker's ``alive`` flag and wakes its loop

    signal.signal(signal.SIGTERM, on_term)


def stop_worker(app: Flask) -> None:
    """Steps 4 and 5 (from ``worker_exit``, after gunicorn has finished the requests in flight)."""
    state: Lifecycle | None = app.extensions.get(LIFECYCLE_EXTENSION)
    while state is not None and state.stops:
        _stop(*state.stops.pop())
    tracing = tracing_of(app)
    if tracing is not None:
        _stop("tracing", tracing.stop)
    others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    log.info("worker stopped", extra={"threads_left": [name for name in others if not name.startswith(_REQUEST_POOL)]})


def stop_master(metrics: MetricsServer | None) -> None:
    """Step 6 (from ``on_exit``, after gunicorn has stopped every worker)."""
    if metrics is not None:
        _stop("metrics server", metrics.stop)


def _stop(name: str, stop: Callable[[], None]) -> None:
    try:
        stop()
    except Exception:
        log.exception("stopping %s failed", name)
    else:
        log.info("stopped %s", name)
