"""service.lifecycle: what readiness reports in each state, and the SIGTERM handler."""

from __future__ import annotations

import os
import signal
import time

from service.lifecycle import Lifecycle, install_drain_handler


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


def test_sigterm_marks_draining_then_hands_over_to_the_handler_before_it() -> None:
    handed_over: list[int] = []
    original = signal.signal(signal.SIGTERM, lambda signum, _frame: handed_over.append(signum))
    try:
        state = Lifecycle()
        state.mark_started()
        install_drain_handler(state)
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to this, the main thread, before kill returns
        assert state.readiness()[1] == "draining" and handed_over == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, original)
