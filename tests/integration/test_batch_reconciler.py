"""One reconciler per data directory under a real gunicorn: of three workers one holds the lock, and when it is
killed another takes it (the kernel drops a dead process's ``flock``)."""

from __future__ import annotations

import os
import signal
import time

from harness.server import running_server

TAKEN = "reconciler lock taken: this process reconciles"


def test_one_worker_of_three_reconciles_and_another_takes_over_when_it_dies() -> None:
    with running_server({"WEB_CONCURRENCY": "3", "FLASK_SVC_BATCH_RECONCILE_SECONDS": "0.1"}) as server:
        first = server.wait_for_log(lambda r: r.get("message") == TAKEN, timeout=20)
        time.sleep(1)  # ten rounds for every worker to try
        holders = [r["pid"] for r in server.json_logs() if r.get("message") == TAKEN]
        assert holders == [first["pid"]], holders
        assert first["pid"] in {worker.pid for worker in server.workers()}
        os.kill(int(first["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
        second = server.wait_for_log(lambda r: r.get("message") == TAKEN and r["pid"] != first["pid"], timeout=30)
        assert second["pid"] in {worker.pid for worker in server.workers()}
