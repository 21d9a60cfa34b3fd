"""Drain on SIGTERM: what Kubernetes does after the preStop sleep. Nothing accepted before the signal may fail."""

from __future__ import annotations

import http.client
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.server import running_server

GRACEFUL = 10
SLOW_SECONDS = 1.5
IN_FLIGHT = 10  # more than the 4 threads: some wait in the worker's queue, accepted but not yet started


@pytest.mark.slow
def test_sigterm_finishes_every_accepted_request_and_exits_zero() -> None:
    env = {"FLASK_SVC_DEBUG_ENDPOINTS": "true", "GUNICORN_GRACEFUL_TIMEOUT": str(GRACEFUL)}
    with running_server(env) as server:
        kept_alive = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        kept_alive.request("GET", "/livez")
        assert kept_alive.getresponse().read()  # connection now idle, kept alive

        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            futures = [
                pool.submit(requests.get, f"{server.url}/delay/{SLOW_SECONDS}", timeout=GRACEFUL + 5)
                for _ in range(IN_FLIGHT)
            ]
            time.sleep(0.5)  # every request is now on the worker's books
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.1)

            # Readiness turns 503 the moment shutdown starts (asked on the connection opened before SIGTERM).
            kept_alive.request("GET", "/readyz")
            readiness = kept_alive.getresponse()
            assert readiness.status == 503
            assert b"draining" in readiness.read()

            # The listening socket is closed: nothing new gets in.
            with pytest.raises(requests.ConnectionError):
                requests.get(f"{server.url}/livez", timeout=2)

            statuses = [future.result().status_code for future in futures]

        exit_code = server.process.wait(GRACEFUL + 2)
        elapsed = time.monotonic() - signalled

    assert statuses == [200] * IN_FLIGHT
    assert exit_code == 0
    assert elapsed < GRACEFUL + 2
    assert any("draining" in str(r.get("message")) for r in server.json_logs())
