"""An app's life as its probes report it — started, ready, draining — and what it started that must be stopped.

One ``Lifecycle`` per application (so per worker process), on ``app.extensions`` (``LIFECYCLE_EXTENSION``). The app
and its features read and write it; the server drives it: it marks it draining on SIGTERM and, when the worker exits,
calls the stops registered here (the order, and everything else a stop involves, is in ``service.server.shutdown``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# What liveness answers while the process runs: the worker's loop (``service.server.worker``) and the WSGI shortcut
# in front of Flask (``service.core.health``) write the same bytes.
ALIVE = b'{"status":"ok"}'


@dataclass
class Lifecycle:
    started: bool = False
    draining: bool = False
    manually_unready: bool = False
    fault: bool = False
    started_at: float = field(default_factory=time.monotonic)
    # (name, stop) for what outlives a request — a thread, a subprocess, a connection — in the order started.
    stops: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def mark_started(self) -> None:
        self.started = True

    def begin_drain(self) -> None:
        self.draining = True  # one assignment: safe from a signal handler

    def on_stop(self, name: str, stop: Callable[[], None]) -> None:
        """Have ``stop`` called when this process stops (last registered, first stopped). A feature registers here
        whatever its ``init_app`` starts; ``stop`` returns once it has stopped, or after a bound of its own."""
        self.stops.append((name, stop))

    def readiness(self) -> tuple[bool, str, str | None]:
        """(ready, status word, reason) for /readyz."""
        if not self.started:
            return False, "starting", "warm-up has not finished"
        if self.draining:
            return False, "draining", "shutdown in progress"
        if self.manually_unready:
            return False, "disabled", "readiness disabled through /readyz/disable"
        return True, "ok", None

    def uptime(self) -> float:
        return time.monotonic() - self.started_at
