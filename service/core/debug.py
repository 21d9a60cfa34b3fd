"""Debug endpoints for demos, chaos drills and `helm test`; registered only when FLASK_SVC_DEBUG_ENDPOINTS=true.

State they change (readiness switch, fault injection) belongs to the worker process that handles the call; with the
default of one worker per container, that is the container.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from service.config import VARIABLE_ACCEPTS
from service.core.current import current_lifecycle, current_settings
from service.problems import Problem, problem_response

bp = Blueprint("debug", __name__)
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_SECRET_NAME = re.compile(
    r"secret|token|pass|pwd|key|credential|auth|cookie|session|private|cert|dsn|headers", re.IGNORECASE
)
# user:password@ in URLs (the user may be empty, the password may hold '/'), and password=… query parameters.
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^@]*@")
_QUERY_SECRET = re.compile(r"((?:password|passwd|pwd|secret|token|key)=)[^&\s]+", re.IGNORECASE)
REDACTED = "[redacted]"
# /env shows these values: facts of the process and the service's own settings (declared in service.config). Every
# other value is redacted whatever its name — a webhook URL or a key under a plain name does not look like a secret.
ENV_SHOWN = frozenset(
    {"HOME", "HOSTNAME", "LANG", "LC_ALL", "PATH", "PWD", "PYTHONPATH", "PYTHONUNBUFFERED", "TZ", "USER"}
    | set(VARIABLE_ACCEPTS)
)


def _number(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise Problem(422, "unprocessable", f"{name} must be a number, got {raw!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise Problem(422, "unprocessable", f"{name} must be a finite number ≥ 0")
    return value


@bp.post("/readyz/disable")
def readyz_disable() -> Response:
    current_lifecycle().manually_unready = True
    return jsonify(ready=False)


@bp.post("/readyz/enable")
def readyz_enable() -> Response:
    current_lifecycle().manually_unready = False
    return jsonify(ready=True)


@bp.route("/status/<int:code>", methods=["GET", "POST"])
def status(code: int) -> Response | tuple[Response, int]:
    if not 200 <= code <= 599:
        raise Problem(422, "unprocessable", "status code must be from 200 to 599")
    if code >= 400:
        return problem_response(code, f"status {code} requested through /status")
    return jsonify(status=code), code


@bp.get("/delay/<seconds>")
def delay(seconds: str) -> Response:
    wanted = _number(seconds, "seconds")
    slept = min(wanted, current_settings().delay_max_seconds)
    time.sleep(slept)
    return jsonify(delayed_seconds=slept, capped=slept < wanted)


@bp.post("/fault/enable")
def fault_enable() -> Response:
    current_lifecycle().fault = True
    return jsonify(fault=True)


@bp.post("/fault/disable")
def fault_disable() -> Response:
    current_lifecycle().fault = False
    return jsonify(fault=False)


@bp.get("/burn")
def burn() -> Response:
    """Spin the CPU for ``ms`` milliseconds (capped): load for HPA demos."""
    wanted = _number(request.args.get("ms", "100"), "ms")
    budget_ms = min(wanted, current_settings().burn_max_ms)
    deadline = time.perf_counter() + budget_ms / 1000
    spins = 0
    while time.perf_counter() < deadline:
        spins += 1
    return jsonify(burned_ms=budget_ms, capped=budget_ms < wanted, iterations=spins)


@bp.route("/echo", methods=ALL_METHODS)
def echo() -> Response:
    """The request body back with its content type (HEAD and bodiless requests get an empty 200)."""
    body = request.get_data(cache=False)
    response = Response(body, status=200, content_type=request.content_type or "application/octet-stream")
    # A reflected body must never run as a page in a browser.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/panic")
def panic() -> Response:
    """Raise an unhandled exception: the 500 path (problem+json, logged traceback, exceptions counter)."""
    raise RuntimeError("panic requested through /panic")


@bp.get("/headers")
def headers() -> Response:
    return jsonify(dict(request.headers.items()))


def redact(name: str, value: str) -> str:
    if name not in ENV_SHOWN or _SECRET_NAME.search(name):
        return REDACTED
    value = _URL_PASSWORD.sub(rf"\1{REDACTED}@", value)
    return _QUERY_SECRET.sub(rf"\1{REDACTED}", value)


@bp.get("/env")
def env() -> Response:
    values: dict[str, Any] = {name: redact(name, value) for name, value in sorted(os.environ.items())}
    return jsonify(values)
