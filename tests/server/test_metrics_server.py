"""service.server.metrics_server's port, served as the gunicorn master serves it (``MetricsServer.serve`` called over
and over, here from a thread of the test; ``tests/integration`` runs it in a real master): a failed port opened again,
a port that cannot be bound tried again later — never back to back — and what a client meets on it."""

from __future__ import annotations

import os
import resource
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psutil
import pytest

from harness.net import LOOPBACK, free_port, http_status
from harness.server import running_server
from service.server.metrics_port import _CLIENT_SECONDS, _MAX_SCRAPES
from service.server.metrics_server import MetricsServer


class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.exceptions: list[str] = []  # what the errors logged with exc_info were

    def info(self, message: str, *args: object) -> None:
        self.lines.append(("info", message % args))

    def warning(self, message: str, *args: object) -> None:
        self.lines.append(("warning", message % args))

    def error(self, message: str, *args: object, **kwargs: Any) -> None:
        self.lines.append(("error", message % args))
        if kwargs.get("exc_info"):
            self.exceptions.append(repr(sys.exc_info()[1]))


@pytest.fixture(autouse=True)
def multiprocess_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with tempfile.TemporaryDirectory() as directory:
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", directory)  # the collector reads it
        yield


@contextmanager
def _serving(metrics: MetricsServer) -> Iterator[MetricsServer]:
    """``metrics`` served as the master's loop serves it, until the block ends."""
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            metrics.serve(0.05)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield metrics
    finally:
        done.set()
        thread.join(5)
        metrics.stop()


@contextmanager
def _listening(host: str = LOOPBACK) -> Iterator[MetricsServer]:
    metrics = MetricsServer(host, free_port(), _Log())
    metrics.start()
    with _serving(metrics):
        yield metrics


def _until_open(metrics: MetricsServer) -> None:
    deadline = time.monotonic() + 5
    while metrics.open is None and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_port_that_fails_is_opened_again() -> None:
    """What replaced the metrics process's restart: an error while serving is logged, and the port answers again."""
    log, port = _Log(), free_port()
    metrics = MetricsServer(LOOPBACK, port, log)
    metrics.start()
    assert metrics.open is not None
    broken = metrics.open

    def fail(timeout: float) -> bool:
        raise OSError("the listener broke")

    broken.serve = fail  # type: ignore[method-assign]
    metrics.serve(0.0)
    assert metrics.open is None
    assert ("error", "the metrics server failed: opening it again") in log.lines
    with _serving(metrics):
        _until_open(metrics)
        assert http_status(port, "/metrics") == 200
        assert metrics.open is not None and metrics.open is not broken
    assert len([line for line in log.lines if line[0] == "info"]) == 2  # "metrics on …", once a start
    assert metrics.open is None


def test_a_start_that_cannot_bind_is_tried_again_later_and_less_often() -> None:
    log, port = _Log(), free_port()
    metrics = MetricsServer(LOOPBACK, port, log)
    metrics.start()
    metrics._close_port()  # as after a failure
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind((LOOPBACK, port))
        taken.listen()
        with pytest.raises(RuntimeError, match=f"did not start on {LOOPBACK}:{port}"):
            metrics.start()
        metrics.serve(0.0)
        assert log.lines[-1][0] == "error" and log.lines[-1][1].endswith("trying again in 1 s")
        spawned = len(log.lines)
        metrics.serve(0.0)  # within the wait: not tried
        assert len(log.lines) == spawned
        metrics.retry_after = 0.0  # the wait is over
        metrics.serve(0.0)
        assert log.lines[-1][1].endswith("trying again in 2 s")
    metrics.retry_after = 0.0
    with _serving(metrics):  # the port is free again
        _until_open(metrics)
        assert metrics.retry_wait == 1.0 and http_status(port, "/metrics") == 200


def _inode(pid: int, fd: int) -> str:
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def _inodes(pid: int) -> set[str]:
    """What each open descriptor of ``pid`` refers to ("socket:[N]", "pipe:[N]", a path)."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(_inode(pid, int(fd)))
        except FileNotFoundError:  # closed meanwhile
            continue
    return found


def test_the_master_serves_metrics_itself_in_its_one_thread() -> None:
    """No second interpreter (it was 15 MB): the master's only children are its workers, it runs one thread, and a
    worker keeps no copy of the port (a connection the master closes is closed; a port it gave up is free)."""
    with running_server() as server:
        assert http_status(server.metrics_port, "/metrics") == 200
        (worker,) = server.workers()  # the master's only child
        booted = [record["message"] for record in server.json_logs() if record["logger"] == "gunicorn.error"]
        assert f"Booting worker with pid: {worker.pid}" in booted  # that child is the worker the master booted
        assert len(os.listdir(f"/proc/{server.process.pid}/task")) == 1
        ports = {conn.laddr.port for conn in worker.net_connections(kind="tcp") if conn.laddr}
        assert server.metrics_port not in ports and server.port in ports
        # Nor its wakeup socketpair (AF_UNIX): no descriptor of the master's, other than the app's listener, is open
        # in the worker; compared by inode, as /proc/<pid>/fd names them ("socket:[N]").
        master = psutil.Process(server.process.pid)
        own = {
            _inode(master.pid, conn.fd)
            for conn in master.net_connections(kind="all")
            if not (isinstance(conn.laddr, tuple) and conn.laddr and conn.laddr.port == server.port)
        }
        assert len(master.net_connections(kind="unix")) >= 2  # the wakeup pair is among them
        assert own and own.isdisjoint(_inodes(worker.pid))


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
    with _listening("::") as metrics:
        assert http_status(metrics.port, "/metrics", host=LOOPBACK) == 200
        assert http_status(metrics.port, "/metrics", host="::1") == 200


def _descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        utime, stime = stat.read().rpartition(")")[2].split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("spare_descriptors", [None, 16], ids=["at-the-cap", "out-of-descriptors"])
def test_idle_connections_keep_no_scrape_out_and_the_server_does_not_spin(spare_descriptors: int | None) -> None:
    """More idle connections than the cap (or than the descriptors left): the oldest idle ones are closed to make
    room, a scrape is answered, and the loop stays idle meanwhile (measured in CPU-seconds, not wall time). In a real
    master: its descriptors are the ones that run out."""
    with running_server() as server:
        pid, port = server.process.pid, server.metrics_port
        baseline = _descriptors(pid)
        if spare_descriptors is not None:  # accept() then fails with EMFILE well before the cap
            _soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (baseline + spare_descriptors, hard))
        idle = [socket.create_connection((LOOPBACK, port)) for _ in range(_MAX_SCRAPES + 16)]
        try:
            cpu_before = _cpu_seconds(pid)
            assert http_status(port, "/metrics", timeout=_CLIENT_SECONDS / 2) == 200
            time.sleep(2.0)  # the idle connections still open
            assert _cpu_seconds(pid) - cpu_before < 0.5  # a spinning loop burns about one CPU-second a second
            assert _descriptors(pid) <= baseline + _MAX_SCRAPES
        finally:
            for sock in idle:
                sock.close()


def test_a_connection_closed_to_make_room_while_it_is_also_ready_closes_only_itself() -> None:
    """At the cap, one round of the loop sees both a new connection and data on the oldest idle one: accepting
    closes the oldest (to make room) before its data is handled. That handling must skip it — the port and every
    other connection stay open, and no error is logged. Rounds are driven one at a time here so that both events
    are ready in the same round."""
    log = _Log()
    metrics = MetricsServer(LOOPBACK, free_port(), log)
    metrics.start()
    port = metrics.open
    assert port is not None
    idle = [socket.create_connection((LOOPBACK, metrics.port)) for _ in range(_MAX_SCRAPES)]
    try:
        deadline = time.monotonic() + 5
        while len(port.scrapes()) < _MAX_SCRAPES and time.monotonic() < deadline:
            metrics.serve(0.05)
        assert len(port.scrapes()) == _MAX_SCRAPES
        idle[0].sendall(b"G")  # the oldest still sending its request: the one closed to make room
        idle.append(socket.create_connection((LOOPBACK, metrics.port)))
        metrics.serve(0.5)  # one round: the listener and the oldest connection both ready
        assert log.exceptions == [] and [line for line in log.lines if line[0] == "error"] == []
        assert metrics.open is port and len(port.scrapes()) == _MAX_SCRAPES
        idle[-1].sendall(b"GET /metrics HTTP/1.0\r\n\r\n")  # the newcomer is served on the same port
        deadline = time.monotonic() + 5
        while metrics.open is port and len(port.scrapes()) == _MAX_SCRAPES and time.monotonic() < deadline:
            metrics.serve(0.05)  # until the newcomer is answered and closed
        idle[-1].settimeout(3.0)
        answer = idle[-1].recv(65536)
        assert answer.startswith(b"HTTP/1.0 200 OK")
    finally:
        for sock in idle:
            sock.close()
        metrics.stop()


def test_an_unexpected_error_on_one_connection_closes_only_that_connection() -> None:
    """A bug met while answering one scrape (here: an answer whose headers cannot be written) ends that connection
    unanswered; the port, and a scrape already connected, go on."""
    with _listening() as metrics:
        port = metrics.open
        assert port is not None
        merged = port.respond

        def respond(method: str, target: str, headers: Mapping[str, str]) -> Any:
            return ("200 OK", None, b"") if target == "/broken" else merged(method, target, headers)

        port.respond = respond
        with socket.create_connection((LOOPBACK, metrics.port), timeout=3.0) as in_flight:
            assert _exchange(metrics.port, b"GET /broken HTTP/1.0\r\n\r\n") == b""
            in_flight.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            assert in_flight.recv(65536).startswith(b"HTTP/1.0 200 OK")
        assert metrics.open is port and isinstance(metrics.log, _Log) and metrics.log.exceptions == []


def test_the_scrapes_answered_in_one_round_share_one_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    """The master's CPU per round stays one merge of the workers' files, however many scrapes arrive together;
    the next round merges again (a later scrape sees newer files)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    merges: list[None] = []
    collect = MultiProcessCollector.collect

    def counted(self: MultiProcessCollector) -> Any:
        merges.append(None)
        return collect(self)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(MultiProcessCollector, "collect", counted)
    metrics = MetricsServer(LOOPBACK, free_port(), _Log())
    metrics.start()
    port = metrics.open
    assert port is not None
    clients = [socket.create_connection((LOOPBACK, metrics.port), timeout=3.0) for _ in range(3)]
    try:
        deadline = time.monotonic() + 5
        while len(port.scrapes()) < len(clients) and time.monotonic() < deadline:
            metrics.serve(0.05)  # accepted, one a round, before any sends its request
        for client in clients:
            client.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        time.sleep(0.2)  # margin: on loopback the requests are queued as soon as sendall returns
        metrics.serve(0.5)
        assert [client.recv(65536)[:15] for client in clients] == [b"HTTP/1.0 200 OK"] * 3
        assert len(merges) == 1
        later = socket.create_connection((LOOPBACK, metrics.port), timeout=3.0)
        clients.append(later)
        later.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        deadline = time.monotonic() + 5
        while len(merges) < 2 and time.monotonic() < deadline:
            metrics.serve(0.05)  # accepted in one round, answered in a later one
        assert later.recv(65536)[:15] == b"HTTP/1.0 200 OK" and len(merges) == 2
    finally:
        for client in clients:
            client.close()
        metrics.stop()
