"""gunicorn's gthread worker, changed so that no request thread ever waits for a client to send its request head.

Stock gthread hands every new connection to a request thread, which then blocks (up to 5 s for the first byte, with
no limit at all for the rest of the head) until the request has arrived: a few idle or slow clients occupy every
thread and the replica stops answering, liveness probe included. Here the worker's main loop — the one that
accepts connections and beats gunicorn's heartbeat — reads request heads itself, without blocking:

- a connection joins the thread pool only once its whole head has arrived; the thread's parser then finds the head
  already buffered, and reads only the body (under ``FLASK_SVC_READ_TIMEOUT_SECONDS``);
- a connection whose head is not complete ``FLASK_SVC_HEADER_TIMEOUT_SECONDS`` after it started is closed (with a
  408 if it had sent part of one) and counted in ``flask_svc_slow_clients_closed_total``;
- the loop answers ``GET /livez`` itself, so liveness never queues behind busy request threads. It answers 503 only
  when every thread has been busy for ``FLASK_SVC_LIVENESS_STALL_SECONDS`` without one request finishing: wedged
  threads, which gunicorn's heartbeat cannot see because the loop that beats it is still running.

Requests gunicorn cannot parse are answered as RFC 9457 problem documents instead of its HTML pages
(``service.server.responses``).

What upstream already does is left to it. Since benoitc/gunicorn#3519 (in 27.0.1, the pinned release) a stock
thread waits up to 5 s for a new connection's first byte and then hands the connection back to the poller: that
still holds a thread for those 5 s, and once one byte has arrived the thread reads the rest of the head without a
limit, so the overrides above stay. Of #3519 this worker uses two parts: ``TConn.data_ready``, set on hand-over (the
loop has taken the head off the socket; a thread must not wait for bytes that will not come), and ``murder_pending``,
which gthread's loop calls every round and while draining (its own pending list stays empty here). Keep-alive,
read-ahead after a body and the drain's linger are gthread's. The gunicorn internals used here are pinned by
tests/server/test_gunicorn_internals.py.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import json
import selectors
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from service.config import Settings
from service.lifecycle import ALIVE
from service.metrics import OFF, Instruments
from service.names import METRICS_EXTENSION
from service.problems import PROBLEM_JSON, problem_document
from service.server.httphead import MAX_HEAD_BYTES, Head, read_head
from service.server.responses import SecondsDate, close_when_asked, problem_bytes, response_bytes, write_problem

_RECV_BYTES = 64 * 1024


@dataclass(eq=False)
class _Waiting:
    """A connection whose request head is still arriving, read by the main loop."""

    conn: Any
    deadline: float
    buffer: bytearray = field(default_factory=bytearray)
    registered: bool = False  # with the poller: only when the head did not arrive whole at once


def service_worker(settings: Settings) -> type[ServiceWorker]:
    """gunicorn's ``worker_class``, bound to the settings the configuration read."""

    bound: type[ServiceWorker] = type("ServiceWorker", (ServiceWorker,), {"bound_settings": settings})
    return bound


class ServiceWorker(ThreadWorker):  # type: ignore[misc]
    bound_settings: Settings
    instruments: Instruments = OFF

    def init_process(self) -> None:
        if self.cfg.is_ssl:  # the loop reads raw bytes; TLS belongs to the ingress or mesh in front
            raise RuntimeError("ServiceWorker does not terminate TLS")
        # gunicorn writes its error pages through util.write_error; this process answers them as problem+json.
        util.write_error = write_problem
        util.http_date = SecondsDate()
        self.header_timeout = self.bound_settings.header_timeout
        self.liveness_stall = self.bound_settings.liveness_stall
        self.waiting: dict[Any, _Waiting] = {}
        self.deadlines: list[tuple[float, int, _Waiting]] = []  # a heap; stale entries are skipped when popped
        self.sequence = itertools.count()
        self.busy = 0  # connections handed to the thread pool and not finished
        self.progress = time.monotonic()  # last moment a thread was free or finished a request
        self.draining = False
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        if hasattr(self.wsgi, "wsgi_app"):  # the app (not the dev loop's error app after a syntax error)
            self.wsgi.wsgi_app = close_when_asked(self.wsgi.wsgi_app)
        # The loop counts slow clients with the app's instruments (the dev loop's error app, after a syntax error
        # under reload, has none).
        self.instruments = getattr(self.wsgi, "extensions", {}).get(METRICS_EXTENSION, OFF)

    # --- connections enter head reading ---

    def accept(self, listener: Any) -> None:
        try:
            sock, client = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, sock, client, listener.getsockname())
        conn.init()  # creates the HTTP/1 parser; reads nothing
        self.wait_for_head(conn, b"")

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection's next request is arriving."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.wait_for_head(conn, b"", readable=True)

    def enqueue_req(self, conn: Any) -> None:
        """gunicorn calls this for a request pipelined behind the one just served: its bytes are in the parser."""
        self.wait_for_head(conn, conn.parser.unreader.take_buffered())

    def wait_for_head(self, conn: Any, data: bytes, readable: bool = False) -> None:
        conn.sock.setblocking(False)
        waiting = _Waiting(conn, time.monotonic() + self.header_timeout, bytearray(data))
        self.waiting[conn] = waiting
        if readable:
            # The poller has just seen bytes: read them now. A kept-alive client's next head nearly always arrives
            # whole, and then goes to a thread without a second trip through the poller (two epoll_ctl calls and a
            # wake-up per request).
            self.on_head_bytes(waiting, conn.sock)
        elif data:
            self.advance(waiting)
        if self.waiting.get(conn) is waiting:  # not answered, handed over or closed: wait for the rest
            heapq.heappush(self.deadlines, (waiting.deadline, next(self.sequence), waiting))
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_head_bytes, waiting))
            waiting.registered = True

    def on_head_bytes(self, waiting: _Waiting, _sock: Any) -> None:
        try:
            chunk = waiting.conn.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client closed or reset the connection
            self.close_waiting(waiting)
            return
        waiting.buffer += chunk
        self.advance(waiting)

    # --- a complete head: answer liveness here, or hand the request to a thread ---

    def advance(self, waiting: _Waiting) -> None:
        while (head := read_head(waiting.buffer, probes_only=True)) is not None and head.is_liveness:
            keep_alive = (
                head.keep_alive
                and self.alive
                and self.cfg.keepalive > 0
                and len(self.keepalived_conns) < self.max_keepalived
            )
            if not self.send(waiting, self.liveness_response(head, keep_alive)) or not keep_alive:
                self.close_waiting(waiting)
                return
            del waiting.buffer[: head.size]
            if not waiting.buffer:
                self.park(waiting)
                return
        if head is None:
            if len(waiting.buffer) > MAX_HEAD_BYTES:
                self.send(waiting, problem_bytes(431, "Request Header Fields Too Large", "request head too large"))
                self.close_waiting(waiting)
            return
        self.stop_waiting(waiting)
        conn = waiting.conn
        conn.parser.unreader.unread(bytes(waiting.buffer))
        conn.data_ready = True
        if self.busy < self.cfg.threads:
            self.progress = time.monotonic()  # a free thread takes it: nothing is stalled
        self.busy += 1
        super().enqueue_req(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        self.busy -= 1
        self.progress = time.monotonic()
        super().finish_request(conn, fs)

    def liveness_response(self, head: Head, keep_alive: bool) -> bytes:
        """200 while the loop runs and the threads make progress; 503 once they have all been stuck too long."""
        stalled_for = time.monotonic() - self.progress
        if self.busy >= self.cfg.threads and stalled_for > self.liveness_stall:
            detail = f"every request thread has been busy for {stalled_for:.0f} s without finishing a request"
            body = json.dumps(problem_document(503, detail)).encode()
            return response_bytes(503, "Service Unavailable", PROBLEM_JSON, body, keep_alive, head.method == "HEAD")
        return response_bytes(200, "OK", "application/json", ALIVE, keep_alive, head.method == "HEAD")

    def send(self, waiting: _Waiting, data: bytes) -> bool:
        """Write a small answer without blocking; False when the socket would not take all of it."""
        try:
            return bool(waiting.conn.sock.send(data) == len(data))
        except OSError:
            return False

    def park(self, waiting: _Waiting) -> None:
        """Back to gunicorn's idle keep-alive list, as after any request a thread served."""
        self.stop_waiting(waiting)
        conn = waiting.conn
        conn.set_timeout()
        self.keepalived_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))

    # --- leaving head reading ---

    def stop_waiting(self, waiting: _Waiting) -> None:
        self.waiting.pop(waiting.conn, None)
        if waiting.registered:
            waiting.registered = False
            with contextlib.suppress(KeyError, ValueError, OSError):  # already closed
                self.poller.unregister(waiting.conn.sock)

    def close_waiting(self, waiting: _Waiting) -> None:
        self.stop_waiting(waiting)
        self.nr_conns -= 1
        waiting.conn.close()

    def murder_pending(self) -> None:
        """Called by gunicorn's loop at least once a second, and while draining: close clients past their deadline."""
        super().murder_pending()
        now = time.monotonic()
        if not self.alive and not self.draining:
            self.draining = True
            # Logged here, from the loop: the SIGTERM handler only sets flags.
            self.log.info("draining: finishing %d open connections within the graceful timeout", self.nr_conns)
            self.cap_deadlines(now + STOP_KEEPALIVE_LINGER)
        while self.deadlines and self.deadlines[0][0] <= now:
            deadline, _, waiting = heapq.heappop(self.deadlines)
            if self.waiting.get(waiting.conn) is not waiting or waiting.deadline != deadline:
                continue  # served, closed, or given a new deadline since
            partial_head = bool(waiting.buffer.strip(b"\r\n"))
            if partial_head:
                self.send(waiting, problem_bytes(408, "Request Timeout", "request head not received in time"))
            if not self.draining:
                self.instruments.slow_clients.labels("incomplete_head" if partial_head else "idle").inc()
            self.close_waiting(waiting)

    def cap_deadlines(self, deadline: float) -> None:
        """On SIGTERM: idle connections close now; a head already arriving gets a short while to complete."""
        for waiting in list(self.waiting.values()):
            if not waiting.buffer.strip(b"\r\n"):
                self.close_waiting(waiting)
            elif waiting.deadline > deadline:
                waiting.deadline = deadline
                heapq.heappush(self.deadlines, (deadline, next(self.sequence), waiting))
