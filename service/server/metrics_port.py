"""The metrics port's connections: each scrape's request head read, its answer written, then closed (HTTP/1.0: one
request a connection) — all without blocking, so that a slow or idle client delays no other scrape and never holds
the loop that serves the port (the gunicorn master's, see ``service.server.metrics_server``).

The rules a client meets here:
- a connection has ``_CLIENT_SECONDS`` to send its request and read the answer; a head over ``_MAX_HEAD_BYTES`` is
  closed unanswered;
- lines end with CRLF or a bare LF (as http.server accepted); a CR left inside a line is a 400, so that no header value
  can carry a line break into the answer;
- at most ``_MAX_SCRAPES`` connections are open at once: beyond it, or out of descriptors, the oldest connection still
  sending its request is closed to make room (Prometheus sends its request as soon as it connects), and when every one
  is being answered, accepting pauses for ``_PAUSE_SECONDS`` instead of spinning on a listener it cannot accept from.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Callable, Mapping

Answer = tuple[str, list[tuple[str, str]], bytes]  # status line's end, headers, body
Respond = Callable[[str, str, Mapping[str, str]], Answer]  # method, target, headers by lower-case name

_CLIENT_SECONDS = 10.0  # for a scrape's connection to send its request and read the answer
_MAX_HEAD_BYTES = 64 * 1024
_RECV_BYTES = 64 * 1024
_MAX_SCRAPES = 64
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_PAUSE_SECONDS = 0.1
_WAKEUP = object()  # the selector's mark for a descriptor that only ends a wait (see ``MetricsPort.wake_on``)


class MetricsPort:
    """The listener and its connections, served by whoever calls ``serve``; nothing runs between calls."""

    def __init__(self, host: str, port: int, respond: Respond) -> None:
        self.respond = respond
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        # On "::" IPv4 is served too, as http.server's listener did (create_server alone sets IPV6_V6ONLY); the whole
        # address keeps a link-local one's scope id.
        dualstack = family == socket.AF_INET6 and socket.has_dualstack_ipv6()
        self.listener = socket.create_server(address, family=family, dualstack_ipv6=dualstack)
        self.listener.setblocking(False)
        # poll, not epoll: no descriptor of its own for a forked worker to inherit
        self.selector = selectors.PollSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, self)
        self.paused_until = 0.0  # while accepting is paused (the listener out of the selector)

    def wake_on(self, fd: int) -> None:
        """``serve`` returns as soon as ``fd`` is readable (it reads what is there)."""
        self.selector.register(fd, selectors.EVENT_READ, _WAKEUP)

    def serve(self, timeout: float) -> bool:
        """Serve whatever is ready within ``timeout`` seconds; True when a descriptor of ``wake_on`` woke it."""
        woken = False
        for key, _events in self.selector.select(min(timeout, _PAUSE_SECONDS) if self.paused_until else timeout):
            if key.data is _WAKEUP:
                woken = True
                _drain(key.fd)
            elif key.data is self:
                self.accept()
            elif not key.data.closed:  # not closed earlier this round (to make room: its descriptor may be reused)
                key.data.advance(self.selector, self.respond)
        now = time.monotonic()
        for scrape in self.scrapes():
            if scrape.deadline < now:
                scrape.close(self.selector)
        if self.paused_until and now >= self.paused_until:
            self.selector.register(self.listener, selectors.EVENT_READ, self)
            self.paused_until = 0.0
        return woken

    def close(self) -> None:
        """The listener, every connection and the selector (in a forked child: its copies only)."""
        for scrape in self.scrapes():
            scrape.sock.close()
        self.listener.close()
        self.selector.close()

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
        self.paused_until = time.monotonic() + _PAUSE_SECONDS
        return False


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


class _Scrape:
    """One connection: its request head read, then the answer written, then closed."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()  # what the selector knows it by: a closed socket's fileno() is -1
        self.closed = False
        self.deadline = deadline
        self.received = bytearray()
        self.line_start = 0  # where the head's line being read begins
        self.scanned = 0  # bytes already searched for its end: each byte is looked at once, however slow the client
        self.reply: memoryview | None = None

    def advance(self, selector: selectors.BaseSelector, respond: Respond) -> None:
        try:
            if self.reply is None:
                self.read(selector, respond)
            else:
                self.write(selector)
        except OSError:
            self.close(selector)
        except Exception:  # a bug: this connection ends, the port and the other connections go on
            import traceback

            traceback.print_exc()
            self.close(selector)

    def read(self, selector: selectors.BaseSelector, respond: Respond) -> None:
        chunk = self.sock.recv(_RECV_BYTES)
        self.received += chunk
        end = self._head_end()
        if end < 0:
            if not chunk or len(self.received) > _MAX_HEAD_BYTES:
                self.close(selector)
            return
        lines = [line.removesuffix("\r") for line in self.received[:end].decode("iso-8859-1").split("\n")]
        headers: list[tuple[str, str]]
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
            except Exception:  # a metric file that cannot be read: the scrape fails, the port goes on
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
        """Once: a second call (timed out, or made room for, in the round that finished it) does nothing."""
        if self.closed:
            return
        self.closed = True
        selector.unregister(self.fd)
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
