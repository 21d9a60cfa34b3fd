"""service.lifecycle: what readiness reports in each state (the SIGTERM handler: tests/server/test_shutdown.py)."""

from __future__ import annotations

import time

from service.lifecycle import Lifecycle


def test_readiness_states_in_order_of_precedence() -> None:
    state = Lifecycle()
    assert state.readiness() == (False, "starting", "warm-up has not finished")
    state.mark_started()
    assert state.readiness() == (True, "ok", None)
    state.manually_unready = True
    assert state.readiness() == (False, "disabled", "readiness disabled through /readyz/disable")
    state.begin_drain()
    assert state.readiness() == (False, "draining", "shutdown in progress")  # draining wins over disabled


def test_uptime_grows() -> None:
    state = Lifecycle()
    first = state.uptime()
    time.sleep(0.01)
    assert state.uptime() > first >= 0
