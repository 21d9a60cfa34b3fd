"""The reconcile loop: each worker moves every unfinished job on, every few seconds, while it leads."""

from __future__ import annotations

import logging
import threading

from service.batch.coordinator import Coordinator
from service.batch.leader import Leader

log = logging.getLogger("service.batch.coordinator")  # its lines keep the logger they always had
_STOP_WAIT_SECONDS = 5.0  # for a round in progress when the reconciler stops; the pod's drain budget is short


class Reconciler:
    """A daemon thread per worker that calls ``reconcile`` every ``interval`` seconds while its ``leader`` says this
    process leads (see ``service.batch.leader``); without one, every round."""

    def __init__(self, coordinator: Coordinator, interval: float, leader: Leader | None = None) -> None:
        self.coordinator = coordinator
        self.interval = interval
        self.leader = leader
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="batch-reconcile", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():  # a round in progress ends before the lock or Lease is given up (bounded)
            self._thread.join(_STOP_WAIT_SECONDS)
        release = getattr(self.leader, "release", None)
        if release is not None:
            release()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.leader is None or self.leader.lead():
                    self.coordinator.reconcile()
            except Exception:  # the next round tries again; one bad job must not stop the loop
                log.exception("batch reconcile failed")
