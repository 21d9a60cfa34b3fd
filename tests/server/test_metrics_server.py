"""service.server.metrics_server's MetricsProcess with real processes: started, found dead and started again, and a
start that cannot bind tried again later — never back to back."""

from __future__ import annotations

import os
import resource
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from harness.net import LOOPBACK, free_port, http_status
from service.server.metrics_server import _CLIENT_SECONDS, _MAX_SCRAPES, MetricsProcess


class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(("info", message % args))

    def warning(self, message: str, *args: object) -> None:
        self.lines.append(("warning", message % args))

    def error(self, message: str, *args: object) -> None:
        self.lines.append(("error", message % args))


@pytest.fixture(autouse=True)
def multiprocess_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with tempfile.TemporaryDirectory() as directory:
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", directory)  # the server process reads it
        yield


def _dead(metrics: MetricsProcess) -> int:
    assert metrics.process is not None
    metrics.process.kill()
    metrics.process.wait()
    return metrics.process.pid


def test_a_dead_server_is_started_again() -> None:
    log, port = _Log(), free_port()
    metrics = MetricsProcess(LOOPBACK, port, log)
    metrics.start()
    try:
        metrics.keep_running()  # alive: nothing to do
        assert len([line for line in log.lines if line[0] == "info"]) == 1
        first = _dead(metrics)
        metrics.keep_running()
        assert metrics.process is not None and metrics.process.pid != first
        assert http_status(port, "/metrics") == 200
        assert ("warning", f"the metrics server (pid {first}) has exited: starting it again") in log.lines
    finally:
        metrics.stop()
    assert metrics.process is None


def test_a_start_that_cannot_bind_is_tried_again_later_and_less_often() -> None:
    log, port = _Log(), free_port()
    metrics = MetricsProcess(LOOPBACK, port, log)
    metrics.start()
    _dead(metrics)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind((LOOPBACK, port))
        taken.listen()
        with pytest.raises(RuntimeError, match=f"did not start on {LOOPBACK}:{port}"):
            metrics.start()
        metrics.keep_running()
        assert log.lines[-1][0] == "error" and log.lines[-1][1].endswith("trying again in 1 s")
        spawned = len(log.lines)
        metrics.keep_running()  # within the wait: not tried
        assert len(log.lines) == spawned
        metrics.retry_after = 0.0  # the wait is over
        metrics.keep_running()
        assert log.lines[-1][1].endswith("trying again in 2 s")
    metrics.retry_after = 0.0
    metrics.keep_running()  # the port is free again
    try:
        assert metrics.process is not None and metrics.process.poll() is None
        assert metrics.retry_wait == 1.0 and http_status(port, "/metrics") == 200
    finally:
        metrics.stop()


@contextmanager
def _listening() -> Iterator[MetricsProcess]:
    metrics = MetricsProcess(LOOPBACK, free_port(), _Log())
    metrics.start()
    try:
        yield metrics
    finally:
        metrics.stop()


def test_the_server_loads_none_of_prometheus_clients_web_servers() -> None:
    """Its ``__init__`` imports them (http.server, wsgiref, urllib.request, ssl): the server does without it."""
    with _listening() as metrics:
        assert metrics.process is not None and http_status(metrics.port, "/metrics") == 200
        with open(f"/proc/{metrics.process.pid}/maps") as maps:
            assert "_ssl" not in maps.read()


def test_a_client_that_sends_half_a_request_delays_no_other_scrape() -> None:
    with _listening() as metrics, socket.create_connection((LOOPBACK, metrics.port)) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        assert http_status(metrics.port, "/metrics") == 200
        assert http_status(metrics.port, "/metrics") == 200


def _exchange(port: int, request: bytes) -> bytes:
    """The whole answer to ``request`` (the server closes after it); a server that waits for more fails in 3 s,
    well before its own 10 s limit."""
    with socket.create_connection((LOOPBACK, port), timeout=3.0) as client:
        client.sendall(request)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer


def _head(answer: bytes) -> list[bytes]:
    return answer.partition(b"\r\n\r\n")[0].split(b"\r\n")


def test_a_line_break_in_a_header_never_reaches_the_answer() -> None:
    """A bare LF ends a header line (the next is a header of its own); a CR left inside a line is refused."""
    injected = b"Accept: application/openmetrics-text; version=2.\nX-Injected: 1\r\n"
    with _listening() as metrics:
        lf = _head(_exchange(metrics.port, b"GET /metrics HTTP/1.1\r\n" + injected + b"\r\n"))
        cr = _head(_exchange(metrics.port, b"GET /metrics HTTP/1.1\r\n" + injected.replace(b"\n", b"\r", 1) + b"\r\n"))
    assert lf[0] == b"HTTP/1.0 200 OK" and b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in lf
    assert not any(b"X-Injected" in line or b"\r" in line or b"\n" in line for line in lf)
    assert cr == [b"HTTP/1.0 400 Bad Request", b"Content-Length: 0", b"Connection: close"]


def test_a_request_whose_lines_end_with_a_bare_lf_is_answered() -> None:
    with _listening() as metrics:
        answer = _exchange(metrics.port, b"GET /metrics HTTP/1.0\nAccept: text/plain\n\n")
    assert _head(answer)[:2] == [b"HTTP/1.0 200 OK", b"Content-Type: text/plain; version=0.0.4; charset=utf-8"]


def test_bound_to_the_ipv6_wildcard_it_answers_on_ipv4_too() -> None:
    """FLASK_SVC_HOST=:: served IPv4 clients with http.server; a listener that is IPv6 only would refuse them."""
    assert socket.has_ipv6 and socket.has_dualstack_ipv6(), "this test needs IPv6 (with IPv4-mapped addresses)"
    metrics = MetricsProcess("::", free_port(), _Log())
    metrics.start()
    try:
        assert http_status(metrics.port, "/metrics", host=LOOPBACK) == 200
        assert http_status(metrics.port, "/metrics", host="::1") == 200
    finally:
        metrics.stop()


def _descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        utime, stime = stat.read().rpartition(")")[2].split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("spare_descriptors", [None, 16], ids=["at-the-cap", "out-of-descriptors"])
def test_idle_connections_keep_no_scrape_out_and_the_server_does_not_spin(spare_descriptors: int | None) -> None:
    """More idle connections than the cap (or than the descriptors left): the oldest idle ones are closed to make
    room, a scrape is answered, and the loop stays idle meanwhile (measured in CPU-seconds, not wall time)."""
    with _listening() as metrics:
        assert metrics.process is not None
        pid, baseline = metrics.process.pid, _descriptors(metrics.process.pid)
        if spare_descriptors is not None:  # accept() then fails with EMFILE well before the cap
            _soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (baseline + spare_descriptors, hard))
        idle = [socket.create_connection((LOOPBACK, metrics.port)) for _ in range(_MAX_SCRAPES + 16)]
        try:
            cpu_before = _cpu_seconds(pid)
            assert http_status(metrics.port, "/metrics", timeout=_CLIENT_SECONDS / 2) == 200
            time.sleep(2.0)  # the idle connections still open
            assert _cpu_seconds(pid) - cpu_before < 0.5  # a spinning loop burns about one CPU-second a second
            assert _descriptors(pid) <= baseline + _MAX_SCRAPES
        finally:
            for sock in idle:
                sock.close()
