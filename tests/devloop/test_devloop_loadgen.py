"""The bounded load generator (tests/e2e/loadgen.py), on loopback."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from tests.e2e.loadgen import LoadResult, http_request, run_load


def test_count_bound_is_exact_across_threads() -> None:
    calls = []
    lock = threading.Lock()

    def request() -> int:
        with lock:
            calls.append(1)
        return 200

    result = run_load(request, max_requests=137, max_seconds=30, concurrency=8)
    assert result.sent == len(calls) == result.ok == 137
    assert result.failed == 0
    assert result.statuses == {200: 137}


def test_time_bound_stops_an_unbounded_count() -> None:
    def request() -> int:
        time.sleep(0.01)
        return 204

    started = time.monotonic()
    result = run_load(request, max_requests=10**9, max_seconds=0.3, concurrency=3)
    took = time.monotonic() - started
    assert 0.3 <= took < 2.0
    assert 0 < result.sent < 10**9
    assert result.ok == result.sent


def test_stop_event_ends_the_run() -> None:
    stop = threading.Event()

    def request() -> int:
        stop.set()  # the first answer asks for the end
        return 200

    result = run_load(request, max_requests=1000, max_seconds=30, concurrency=4, stop=stop)
    assert 1 <= result.sent <= 4  # only requests claimed before the event was seen


def test_errors_and_bad_statuses_are_failures() -> None:
    answers = iter([200, 503, ConnectionResetError("reset"), 302, TimeoutError("slow"), 404])

    def request() -> int:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = run_load(request, max_requests=6, max_seconds=30, concurrency=1)
    assert (result.sent, result.ok, result.failed) == (6, 2, 4)
    assert result.statuses == {200: 1, 503: 1, 302: 1, 404: 1}
    assert result.errors == {"ConnectionResetError": 1, "TimeoutError": 1}


def test_zero_bounds_send_nothing() -> None:
    assert run_load(lambda: 200, max_requests=0, max_seconds=30).sent == 0
    assert run_load(lambda: 200, max_requests=10, max_seconds=0).sent == 0


@pytest.mark.parametrize("kwargs", [{"concurrency": 0}, {"max_requests": -1}, {"max_seconds": -1}])
def test_nonsense_bounds_are_refused(kwargs: dict[str, int]) -> None:
    args = {"max_requests": 1, "max_seconds": 1, "concurrency": 1} | kwargs
    with pytest.raises(ValueError, match="must be"):
        run_load(lambda: 200, **args)


def test_percentiles_and_json_round_trip() -> None:
    result = LoadResult(sent=4, ok=3, failed=1, latencies=[0.4, 0.1, 0.3, 0.2])
    result.statuses.update({200: 3, 500: 1})
    result.errors.update({"OSError": 0})
    assert result.percentile(50) == 0.2
    assert result.percentile(99) == 0.4
    back = LoadResult.from_json(result.to_json())
    assert (back.sent, back.ok, back.failed, back.statuses) == (4, 3, 1, {200: 3, 500: 1})
    assert LoadResult().percentile(99) == 0.0


def test_http_request_against_a_loopback_server(http_server: ThreadingHTTPServer) -> None:
    port = http_server.server_address[1]
    assert http_request(f"http://127.0.0.1:{port}/status/503")() == 503
    assert http_request(f"http://127.0.0.1:{port}/x?y=1", method="POST", body=b"hello")() == 200
    result = run_load(http_request(f"http://127.0.0.1:{port}/"), max_requests=40, max_seconds=10, concurrency=4)
    assert (result.sent, result.ok) == (40, 40)


def test_http_request_refused_connection_is_an_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    result = run_load(http_request(f"http://127.0.0.1:{port}/", timeout=2), max_requests=3, max_seconds=10)
    assert (result.sent, result.failed) == (3, 3)
    assert result.errors == {"ConnectionRefusedError": 3}


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="http://"):
        http_request("https://example.invalid/")


def test_cli_prints_the_summary_last(http_server: ThreadingHTTPServer) -> None:
    """The way the e2e Job runs it: `python -c <source> --url ...` (here with this interpreter)."""
    from tests.e2e.kube_support import LOADGEN_SOURCE, parse_load_summary

    port = http_server.server_address[1]
    url = f"http://127.0.0.1:{port}/api/v1/analyze"
    cmd = [sys.executable, "-c", LOADGEN_SOURCE, "--url", url, "--method", "POST", "--body", "a b c"]
    out = subprocess.run(
        [*cmd, "--requests", "25", "--seconds", "20", "--concurrency", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    result = parse_load_summary(out)
    assert (result.sent, result.ok, result.failed) == (25, 25, 0)
    assert http_server.hits == 25  # type: ignore[attr-defined]
