"""service.server.shutdown in process: the SIGTERM handler, and a worker's stops in their stated order on the real
app (batch on the local runner, tracing to a real OTLP/HTTP receiver). The same path under a real gunicorn, with the
master's metrics server last: tests/integration/test_shutdown.py."""

from __future__ import annotations

import logging
import os
import signal
import threading

import pytest

from harness.otlp import otlp_receiver
from service.lifecycle import Lifecycle
from service.names import ANALYZE_PATH, LIFECYCLE_EXTENSION
from service.server.shutdown import drain_on_sigterm, stop_worker
from tests.app.conftest import make_app

RECONCILER_THREAD = "batch-reconcile"
SPAN_PROCESSOR_THREAD = "OtelBatchSpanRecordProcessor"


def test_sigterm_marks_draining_then_hands_over_to_the_handler_before_it() -> None:
    handed_over: list[int] = []
    original = signal.signal(signal.SIGTERM, lambda signum, _frame: handed_over.append(signum))
    try:
        state = Lifecycle()
        state.mark_started()
        drain_on_sigterm(state)
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to this, the main thread, before kill returns
        assert state.readiness()[1] == "draining" and handed_over == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, original)


def _names(threads: list[threading.Thread]) -> list[str]:
    return [thread.name for thread in threads]


def test_a_worker_stops_its_features_last_started_first_then_tracing(caplog: pytest.LogCaptureFixture) -> None:
    # Other in-process apps of the same pytest run may still have their own reconciler threads: this app's threads
    # are told apart by identity, and what the worker logs as left is compared with what was there before it.
    before = threading.enumerate()
    with otlp_receiver() as receiver:
        app = make_app(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, FLASK_SVC_BATCH_RECONCILE_SECONDS="0.1")
        started = [thread for thread in threading.enumerate() if thread not in before]
        mine = [thread for thread in started if thread.name in (RECONCILER_THREAD, SPAN_PROCESSOR_THREAD)]
        state: Lifecycle = app.extensions[LIFECYCLE_EXTENSION]
        stopped: list[str] = []
        state.on_stop("first started", lambda: stopped.append("first started"))
        state.on_stop("failing", lambda: 1 / 0)  # logged; the stops after it still run
        state.on_stop("last started", lambda: stopped.append("last started"))
        assert sorted(_names(mine)) == sorted([RECONCILER_THREAD, SPAN_PROCESSOR_THREAD])
        assert app.test_client().post(ANALYZE_PATH, json={"text": "one span"}).status_code == 200

        with caplog.at_level(logging.INFO, logger="service.server.shutdown"):
            stop_worker(app)

        assert stopped == ["last started", "first started"] and state.stops == []
        records = [record for record in caplog.records if record.name == "service.server.shutdown"]
        lines = [record.getMessage() for record in records]
        assert lines == [
            "stopped last started",
            "stopping failing failed",
            "stopped first started",
            "stopped batch reconciler",
            "stopped batch stage host",
            "stopped tracing",
            "worker stopped",
        ]
        left: list[str] = records[-1].threads_left  # type: ignore[attr-defined]
        for name in (RECONCILER_THREAD, SPAN_PROCESSOR_THREAD):
            assert left.count(name) <= _names(before).count(name), name
        assert not [thread.name for thread in mine if thread.is_alive()]
        assert any(span.name == f"POST {ANALYZE_PATH}" for span in receiver.spans)  # flushed on the way out
