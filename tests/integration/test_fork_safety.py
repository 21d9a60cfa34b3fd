"""A fork-safe master: no thread runs in the gunicorn master when it forks a worker, at start or when it replaces one.

Forking while another thread runs can leave the child waiting forever on a lock that thread held; Python 3.12 (the
image's) warns about it with a DeprecationWarning. The service runs here with such warnings turned into errors, and
its master's thread count is read from the kernel (what 3.12 checks) after every way a worker gets replaced."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
import requests

from harness.net import http_status
from harness.server import Server, running_server

WORKERS = 2


def _settled(server: Server, count: int, replaced: frozenset[int] = frozenset()) -> frozenset[int]:
    """The workers' pids once there are ``count`` of them, none of ``replaced`` among them, and the app answers."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = frozenset(worker.pid for worker in server.workers())
        if len(pids) == count and not pids & replaced and http_status(server.port) == 200:
            return pids
        time.sleep(0.1)
    raise AssertionError(f"the workers did not settle to {count} (replacing {sorted(replaced)})")


def test_workers_are_forked_and_replaced_by_a_master_without_threads() -> None:
    env = {"WEB_CONCURRENCY": str(WORKERS), "PYTHONWARNINGS": "error::DeprecationWarning"}
    with running_server(env) as server:
        master = psutil.Process(server.process.pid)
        workers = _settled(server, WORKERS)
        assert master.num_threads() == 1

        for _ in range(3):  # a worker killed outright, as the OOM killer would
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            workers = _settled(server, WORKERS, frozenset({victim}))
            assert master.num_threads() == 1
        master.send_signal(signal.SIGTTIN)  # one more worker
        workers = _settled(server, WORKERS + 1)
        master.send_signal(signal.SIGTTOU)  # one fewer
        workers = _settled(server, WORKERS)
        master.send_signal(signal.SIGHUP)  # every worker replaced
        workers = _settled(server, WORKERS, workers)
        assert master.num_threads() == 1

        assert requests.post(server.url + "/api/v1/analyze", json={"text": "still here"}, timeout=5).ok
        metrics = requests.get(server.metrics_url, timeout=5).text
        assert "flask_svc_analyzed_bytes_total" in metrics and master.num_threads() == 1  # served by the master
        assert server.stop() == 0
    logs = "\n".join(server.lines)
    assert "DeprecationWarning" not in logs and "threads running" not in logs


def test_the_metrics_port_closes_when_the_master_is_killed() -> None:
    with running_server() as server:
        workers = server.workers()
        server.process.kill()
        server.process.wait(10)
        assert http_status(server.metrics_port, "/metrics") is None  # at once: no worker holds a copy of the port
        for worker in workers:  # gunicorn's workers notice the same way
            worker.wait(10)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.metrics_url, timeout=2)
