"""The master's side of the metrics: the multiprocess directory, and ``/metrics`` served by a process of its own.

Under gunicorn every worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``. The metrics server merges
the files of all workers, live and dead, so a scrape never queues behind application requests and counters never go
backwards when a worker is replaced.

It runs as a separate process, not as a thread of the master: the master forks a worker at start and again whenever
one is replaced, and a fork taken while another thread runs can leave the child waiting forever on a lock that thread
held (Python 3.12 warns about exactly this). The master therefore runs no thread at all. The server is spawned —
``subprocess``, so fork and exec of a fresh interpreter, with nothing inherited but the environment — once the master
is ready; the master starts it again should it die (``MetricsProcess.keep_running``, from its main loop), stops it
last when it exits, and it stops by itself should the master die without stopping it.

The process is kept small (a bare interpreter and little more): one thread, a loop that reads each scrape's request
and writes its answer without blocking, and of prometheus_client only the multiprocess collector and the OpenMetrics
writer — not its package ``__init__``, which imports its web servers (``service.server.exposition`` answers as they
did).

    python -m service.server.metrics_server HOST PORT PARENT   # what the master runs; prints "ready" once it listens
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import sys
import time
import types
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

# subprocess, shutil and service.privatedirs (pathlib) are imported where the master uses them, traceback where a
# scrape fails: the server process, run from this module, needs none of them (each MiB counts in a process this small).

READY = "ready"
_START_TIMEOUT = 10.0  # seconds for the interpreter to start and bind
_STOP_TIMEOUT = 5.0
_PARENT_CHECK_SECONDS = 1.0
_CLIENT_SECONDS = 10.0  # for a scrape's connection to send its request and read the answer
_MAX_HEAD_BYTES = 64 * 1024
_RECV_BYTES = 64 * 1024
# Connections open at once. Beyond it, or out of descriptors, the oldest one still sending its request is closed to
# make room: idle connections cannot keep a scraper out (Prometheus sends its request as soon as it connects).
_MAX_SCRAPES = 64
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_PAUSE_SECONDS = 0.1  # no accepting for this long when there is no room to make (every connection being answered)
# After a failed start the next try waits this long, doubling up to the maximum: a port someone else took must not
# make the master spawn interpreters back to back.
_RETRY_FIRST_SECONDS = 1.0
_RETRY_MAX_SECONDS = 30.0


def reset_multiprocess_dir(path: str) -> None:
    """Start from an empty directory: files left by an earlier run would be summed into this one's counters.
    Only a private directory is emptied (``service.privatedirs``): never one a planted symbolic link points to."""
    import shutil

    from service.privatedirs import ensure_directory

    for entry in os.scandir(ensure_directory(path)):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's live gauges; its counters stay in the files so totals never go backwards."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid)  # type: ignore[no-untyped-call]


class MetricsProcess:
    """The metrics server as a child of the master: started, kept running, stopped. Used by the master only."""

    def __init__(self, host: str, port: int, log: Any = None) -> None:
        self.host = host
        self.port = port
        self.log = log  # gunicorn's error log: given once there is one, before ``wait_until_listening``
        self.process: subprocess.Popen[str] | None = None  # the server, once it listens
        self.spawned: subprocess.Popen[str] | None = None  # a server not yet known to listen (``spawn``)
        self.retry_after = 0.0  # monotonic time before which a failed start is not tried again
        self.retry_wait = _RETRY_FIRST_SECONDS

    def start(self) -> None:
        """Spawn the server and wait until it listens; raises ``RuntimeError`` (with its exit code) if it cannot."""
        self.spawn()
        self.wait_until_listening()

    @classmethod
    def spawned_now(cls, host: str, port: int) -> MetricsProcess:
        metrics = cls(host, port)
        metrics.spawn()
        return metrics

    def spawn(self) -> None:
        """``start``'s first half: the master spawns the server as soon as it has read the settings, and waits for it
        only once it has imported the app's modules, so that the server's interpreter starts meanwhile, on another
        core (start → ready shorter by the server's start)."""
        import subprocess

        self.spawned = subprocess.Popen(
            [sys.executable, "-m", __name__, self.host, str(self.port), str(os.getpid())],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def wait_until_listening(self) -> None:
        """``start``'s second half (see ``spawn``)."""
        process, self.spawned = self.spawned, None
        assert process is not None and process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            answered = selector.select(_START_TIMEOUT)
        line = process.stdout.readline().strip() if answered else ""
        process.stdout.close()
        if line != READY:
            _stop(process)
            raise RuntimeError(
                f"the metrics server did not start on {self.host}:{self.port} (exit code {process.returncode})"
            )
        self.process = process
        self.log.info("metrics on http://%s:%d/metrics (pid %d)", self.host, self.port, process.pid)

    def keep_running(self) -> None:
        """Start the server again if it has exited (called from the master's loop: at least once a second).

        gunicorn's loop may have reaped it already (it waits for any child): ``poll`` reports it gone all the same."""
        if self.process is None or self.process.poll() is None or time.monotonic() < self.retry_after:
            return
        # Its exit status went to whoever reaped it first: gunicorn logs it (debug) when that was its loop.
        self.log.warning("the metrics server (pid %d) has exited: starting it again", self.process.pid)
        try:
            self.start()
        except RuntimeError as error:
            self.retry_after = time.monotonic() + self.retry_wait
            self.log.error("%s; trying again in %.0f s", error, self.retry_wait)
            self.retry_wait = min(self.retry_wait * 2, _RETRY_MAX_SECONDS)
        else:
            self.retry_wait = _RETRY_FIRST_SECONDS

    def stop(self) -> None:
        for process in (self.process, self.spawned):
            if process is not None:
                _stop(process)
        self.process = self.spawned = None


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if it has not gone within a few seconds."""
    import subprocess

    process.terminate()
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve(host: str, port: int, parent: int) -> None:
    """The server process: listen, say so, and live as long as the master does."""
    _prometheus_client_without_its_init()
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.registry import CollectorRegistry

    from service.request_totals import WithRequestTotals
    from service.server.exposition import answer

    registry = CollectorRegistry()
    merged = MultiProcessCollector(None)  # type: ignore[no-untyped-call]
    registry.register(WithRequestTotals(merged.collect))
    respond = partial(answer, registry)
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    # On "::" IPv4 is served too, as http.server's listener did (create_server alone sets IPV6_V6ONLY); the whole
    # address keeps a link-local one's scope id.
    dualstack = family == socket.AF_INET6 and socket.has_dualstack_ipv6()
    listener = socket.create_server(address, family=family, dualstack_ipv6=dualstack)
    with listener, selectors.DefaultSelector() as selector:
        listener.setblocking(False)
        accepting = _Accepting(listener, selector)
        print(READY, flush=True)
        # SIGTERM's default action ends the process: no handler. A master killed outright cannot stop this
        # process, but it is then re-parented, which this loop notices.
        while os.getppid() == parent:
            for key, _events in selector.select(_PAUSE_SECONDS if accepting.paused else _PARENT_CHECK_SECONDS):
                if key.data is accepting:
                    accepting.accept()
                else:
                    key.data.advance(selector, respond)
            now = time.monotonic()
            for scrape in accepting.scrapes():
                if scrape.deadline < now:
                    scrape.close(selector)
            accepting.resume(now)


def _prometheus_client_without_its_init() -> None:
    """Make prometheus_client's modules importable without running the package's ``__init__``, which imports its
    web servers and push-gateway client (http.server, wsgiref, urllib.request, ssl: most of this process's memory).
    This process imports only modules that import none of that (``service.server.exposition``)."""
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec("prometheus_client")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("prometheus_client is not installed")
    package = types.ModuleType(spec.name)
    package.__spec__, package.__path__ = spec, list(spec.submodule_search_locations)
    sys.modules.setdefault(spec.name, package)


class _Accepting:
    """The listener, and room for one more connection (``_MAX_SCRAPES``). Out of descriptors, ``accept`` fails while
    the listener stays readable: without room made or the listener set aside, the loop would spin a core and never
    accept the scrape waiting."""

    def __init__(self, listener: socket.socket, selector: selectors.BaseSelector) -> None:
        self.listener = listener
        self.selector = selector
        self.paused = False
        self.paused_until = 0.0
        selector.register(listener, selectors.EVENT_READ, self)

    def scrapes(self) -> list[_Scrape]:
        return [key.data for key in self.selector.get_map().values() if isinstance(key.data, _Scrape)]

    def accept(self) -> None:
        scrapes = self.scrapes()
        if len(scrapes) >= _MAX_SCRAPES and not self.make_room(scrapes):
            return
        try:
            sock, _ = self.listener.accept()
        except OSError as error:  # gone before it was accepted, or out of descriptors
            if error.errno in _OUT_OF_DESCRIPTORS:
                self.make_room(scrapes)
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, _Scrape(sock, time.monotonic() + _CLIENT_SECONDS))

    def make_room(self, scrapes: list[_Scrape]) -> bool:
        """Close the oldest connection still sending its request; if every one is being answered, stop accepting
        for a moment (one of them closes soon)."""
        reading = [scrape for scrape in scrapes if scrape.reply is None]
        if reading:
            min(reading, key=lambda scrape: scrape.deadline).close(self.selector)
            return True
        self.selector.unregister(self.listener)
        self.paused, self.paused_until = True, time.monotonic() + _PAUSE_SECONDS
        return False

    def resume(self, now: float) -> None:
        if self.paused and now >= self.paused_until:
            self.selector.register(self.listener, selectors.EVENT_READ, self)
            self.paused = False


class _Scrape:
    """One connection: its request head read, then the answer written, then closed (HTTP/1.0: one request each),
    all without blocking, so a slow client delays no other scrape."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.received = bytearray()
        self.line_start = 0  # where the head's line being read begins
        self.scanned = 0  # bytes already searched for its end: each byte is looked at once, however slow the client
        self.reply: memoryview | None = None

    def advance(self, selector: selectors.BaseSelector, respond: Any) -> None:
        try:
            if self.reply is None:
                self.read(selector, respond)
            else:
                self.write(selector)
        except OSError:
            self.close(selector)

    def read(self, selector: selectors.BaseSelector, respond: Any) -> None:
        chunk = self.sock.recv(_RECV_BYTES)
        self.received += chunk
        end = self._head_end()
        if end < 0:
            if not chunk or len(self.received) > _MAX_HEAD_BYTES:
                self.close(selector)
            return
        # Lines end with CRLF or a bare LF (as http.server accepted); a CR left inside a line is refused, so that no
        # header value can carry a line break into the answer.
        lines = [line.removesuffix("\r") for line in self.received[:end].decode("iso-8859-1").split("\n")]
        try:
            request_line, *header_lines = lines
            method, target, _version = request_line.split(" ")
            if any("\r" in line for line in lines):
                raise ValueError("a bare CR in the request head")
        except ValueError:
            status, headers, body = "400 Bad Request", [], b""
        else:
            try:
                status, headers, body = respond(method, target, _headers(header_lines))
            except Exception:  # a metric file that cannot be read: the scrape fails, the server goes on
                import traceback

                traceback.print_exc()
                status, headers, body = "500 Internal Server Error", [("Content-Type", "text/plain")], b""
        head = [f"HTTP/1.0 {status}", *(f"{name}: {value}" for name, value in headers)]
        head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        self.reply = memoryview("\r\n".join(head).encode("latin-1") + body)
        selector.modify(self.sock, selectors.EVENT_WRITE, self)
        self.write(selector)

    def _head_end(self) -> int:
        """Where the head's last line ends (before the empty line that closes the head), or -1 while it is not all
        here."""
        while (newline := self.received.find(b"\n", self.scanned)) >= 0:
            line, self.line_start, self.scanned = self.received[self.line_start : newline], newline + 1, newline + 1
            if not line.removesuffix(b"\r"):
                return max(newline - len(line) - 1, 0)
        self.scanned = len(self.received)
        return -1

    def write(self, selector: selectors.BaseSelector) -> None:
        assert self.reply is not None
        self.reply = self.reply[self.sock.send(self.reply) :]
        if not self.reply:
            self.close(selector)

    def close(self, selector: selectors.BaseSelector) -> None:
        selector.unregister(self.sock)
        self.sock.close()


def _headers(lines: list[str]) -> dict[str, str]:
    """By lower-case name; a repeated header's values joined with commas (as a WSGI server joins them)."""
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            headers[key] = f"{headers[key]},{value.strip()}" if key in headers else value.strip()
    return headers


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
