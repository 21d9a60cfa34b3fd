"""Per-request plumbing: request id, in-flight gauge, fault injection, and the fields the access line needs."""

from __future__ import annotations

import random
import re
import socket
import struct
import time
import weakref
from contextvars import Token
from dataclasses import dataclass

from flask import Flask, Request, Response, request

from service.config import Settings
from service.lifecycle import Lifecycle
from service.logs import REQUEST_ID, current_trace_ids
from service.metrics import REJECT_REASONS, Instruments, url_rule
from service.names import ACCESS_ENVIRON_KEY, PROBE_PATHS, TRACING_EXTENSION
from service.problems import problem_response

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"  # the same header, read straight from the WSGI environ
# Accept a caller's id only if it is short and plain: it lands in logs and response headers.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
_STATE_KEY = "flask_svc.request"
# A random (version 4) UUID's fixed bits: the version nibble and the RFC 4122 variant.
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def set_io_timeouts(sock: socket.socket, seconds: float) -> None:
    """Bound each blocking recv and send on ``sock`` with the kernel's own timeouts (SO_RCVTIMEO, SO_SNDTIMEO).

    Unlike ``sock.settimeout``, the socket stays blocking: no O_NONBLOCK toggle and no poll before every recv and
    send (each a GIL hand-over among the request threads). A timed-out recv or send raises BlockingIOError (EAGAIN)
    instead of TimeoutError. gunicorn's keep-alive poller works on the socket in non-blocking mode, where these
    options do nothing, and toggling blocking mode leaves them set.
    """
    timeval = struct.pack("@ll", *divmod(round(seconds * 1_000_000), 1_000_000))  # struct timeval: s, µs
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def new_request_id() -> str:
    """A random UUID (version 4) as 32 hex digits, like ``uuid.uuid4().hex``, from the per-process PRNG (reseeded
    after fork) instead of os.urandom and a UUID object: an id to correlate lines by, not a secret."""
    return format(random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET, "032x")


@dataclass
class _Begun:
    """What ``_begin`` leaves in the WSGI environ for the other hooks (one dict lookup instead of ``g`` reads)."""

    request_id: str
    token: Token[str | None]
    counted: bool  # in the in-flight gauge and the RED metrics: not a probe
    started: float  # perf_counter() at the start, for the request duration
    recorded: bool = False  # the request duration observed (by _finish, or by _teardown for an unanswered error)


def init_app(app: Flask, settings: Settings, state: Lifecycle, metrics: Instruments) -> None:
    """One hook of each kind does all the per-request work (request id, read timeout, fault injection, in-flight
    gauge, RED metrics, the access line's fields), reading the request object once."""
    read_timeout = settings.read_timeout
    # Connections whose socket has its timeouts: the options outlive the request, so a kept-alive connection's
    # later requests skip the two syscalls. Weak, so a closed connection's socket leaves the set with it.
    timed_sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
    in_flight = metrics.in_flight
    routes = metrics.routes

    @app.before_request
    def _begin() -> Response | None:
        # The request object once, not through the proxy per attribute (each proxied read is a context lookup).
        current: Request = request._get_current_object()  # type: ignore[attr-defined]
        environ = current.environ
        # A client that stops sending its body, or stops reading the response, must not hold a request thread
        # forever: past this wait, reading the body raises BlockingIOError (answered 408) and a send gives up.
        sock = environ.get("gunicorn.socket")
        if sock is not None and sock not in timed_sockets:
            set_io_timeouts(sock, read_timeout)
            timed_sockets.add(sock)
        supplied = environ.get(_REQUEST_ID_ENVIRON)
        request_id = supplied if supplied and _VALID_REQUEST_ID.fullmatch(supplied) else new_request_id()
        path = current.path
        counted = path not in PROBE_PATHS
        environ[_STATE_KEY] = _Begun(request_id, REQUEST_ID.set(request_id), counted, time.perf_counter())
        if counted:
            in_flight.inc()
            if state.fault and not _spared_by_fault(path, current.method):
                return problem_response(500, "fault injection is on (POST /fault/disable to stop it)", "fault_injected")
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        current: Request = request._get_current_object()  # type: ignore[attr-defined]
        environ = current.environ
        begun: _Begun | None = environ.get(_STATE_KEY)
        request_id = begun.request_id if begun else None
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        status = response.status_code
        route = url_rule(current)
        counted = begun.counted if begun else current.path not in PROBE_PATHS
        if counted:
            if status in REJECT_REASONS:
                metrics.rejected.labels(REJECT_REASONS[status]).inc()
            if routes is not None and begun is not None and not begun.recorded:
                begun.recorded = True
                routes.observe(current.method, route, status, time.perf_counter() - begun.started)
        # Without a tracer provider no request carries a span context: skip the lookup.
        traced = app.extensions.get(TRACING_EXTENSION) is not None
        trace_id, span_id = current_trace_ids() if traced else (None, None)
        environ[ACCESS_ENVIRON_KEY] = {
            "route": route,
            "request_id": request_id,
            "trace_id": trace_id,
            "span_id": span_id,
        }
        return response

    @app.teardown_request
    def _teardown(error: BaseException | None) -> None:
        current: Request = request._get_current_object()  # type: ignore[attr-defined]
        begun: _Begun | None = current.environ.pop(_STATE_KEY, None)
        if begun is None:
            return
        if begun.counted:
            in_flight.dec()
            # An exception no handler answered: counted, and recorded as a 500 unless _finish already recorded it.
            if error is not None and routes is not None:
                routes.count_exception(current.method)
                if not begun.recorded:
                    begun.recorded = True
                    routes.observe(current.method, url_rule(current), 500, time.perf_counter() - begun.started)
        REQUEST_ID.reset(begun.token)


def _spared_by_fault(path: str, method: str) -> bool:
    """/fault/* turns it off; the home page (GET /, its assets, its toggles) stays up so a drill can end from it."""
    return path.startswith(("/fault/", "/ui/")) or (path == "/" and method == "GET")
