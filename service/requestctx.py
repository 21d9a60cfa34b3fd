"""Per-request plumbing: request id, in-flight gauge, fault injection, and the fields the access line needs."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from service.config import Settings
from service.lifecycle import Lifecycle
from service.logs import REQUEST_ID, current_trace_ids
from service.metrics import REJECT_REASONS, Instruments, url_rule
from service.names import ACCESS_ENVIRON_KEY, PROBE_PATHS
from service.problems import problem_response

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's id only if it is short and plain: it lands in logs and response headers.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")


def init_app(app: Flask, settings: Settings, state: Lifecycle, metrics: Instruments) -> None:

    @app.before_request
    def _begin() -> Response | None:
        # A client that stops sending its body must not hold a request thread forever: past this wait, reading
        # the body raises TimeoutError (answered 408). gunicorn resets the socket when the connection goes idle.
        sock = request.environ.get("gunicorn.socket")
        if sock is not None:
            sock.settimeout(settings.read_timeout)
        supplied = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = supplied if _VALID_REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
        g.request_id_token = REQUEST_ID.set(g.request_id)
        g.counted_in_flight = request.path not in PROBE_PATHS
        if g.counted_in_flight:
            metrics.in_flight.inc()
        if state.fault and g.counted_in_flight and not _spared_by_fault(request.path, request.method):
            return problem_response(500, "fault injection is on (POST /fault/disable to stop it)", "fault_injected")
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        if response.status_code in REJECT_REASONS and request.path not in PROBE_PATHS:
            metrics.rejected.labels(REJECT_REASONS[response.status_code]).inc()
        trace_id, span_id = current_trace_ids()
        request.environ[ACCESS_ENVIRON_KEY] = {
            "route": url_rule(request),
            "request_id": request_id,
            "trace_id": trace_id,
            "span_id": span_id,
        }
        return response

    @app.teardown_request
    def _teardown(_error: BaseException | None) -> None:
        if g.pop("counted_in_flight", False):
            metrics.in_flight.dec()
        token = g.pop("request_id_token", None)
        if token is not None:
            REQUEST_ID.reset(token)


def _spared_by_fault(path: str, method: str) -> bool:
    """/fault/* turns it off; the home page (GET /, its assets, its toggles) stays up so a drill can end from it."""
    return path.startswith(("/fault/", "/ui/")) or (path == "/" and method == "GET")
