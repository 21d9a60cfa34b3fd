"""What the probes report: started, ready, draining — one state object per application (so per worker process).

Read top to bottom, a worker's life is:
1. ``create_app`` builds the app and runs the pipeline once (``warm_up``) → started: /startupz and /readyz answer 200.
2. Kubernetes removes the pod from the endpoints and runs the preStop sleep; then SIGTERM reaches gunicorn, which
   closes the listening socket and passes SIGTERM to each worker.
3. The worker's SIGTERM handler (installed by ``install_drain_handler``) marks the state draining — /readyz answers
   503 from that moment — then hands over to gunicorn's own handler, which finishes every request in flight within
   the graceful timeout and exits 0. This handler only sets a flag: a signal handler runs between two bytecodes of
   whatever the main thread was doing, possibly inside a lock it holds, so it must take no lock and write nothing
   (the worker's loop logs the drain once it sees it).
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from types import FrameType


@dataclass
class Lifecycle:
    started: bool = False
    draining: bool = False
    manually_unready: bool = False
    fault: bool = False
    started_at: float = field(default_factory=time.monotonic)

    def mark_started(self) -> None:
        self.started = True

    def begin_drain(self) -> None:
        self.draining = True  # one assignment: safe from a signal handler

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


def install_drain_handler(state: Lifecycle) -> None:
    """Chain a SIGTERM handler in front of gunicorn's worker handler (called from ``post_worker_init``)."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        state.begin_drain()
        if callable(previous):
            previous(signum, frame)  # gunicorn's: clears the worker's ``alive`` flag and wakes its loop

    signal.signal(signal.SIGTERM, on_term)
