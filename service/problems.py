"""RFC 9457 problem details: the one shape every error takes, 404/405/500 included."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
# Stable codes for the statuses clients meet; HTTP reason phrases change between Python versions (413).
STATUS_CODES = {
    400: "bad_request",
    408: "request_timeout",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    500: "internal_error",
    503: "service_unavailable",
}


class Problem(Exception):
    """Raise to answer with a problem document; ``code`` is a stable machine-readable slug."""

    def __init__(
        self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a valid but unregistered code, e.g. 450
        return "Client Error" if status < 500 else "Server Error"


def problem_document(status: int, detail: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    """The problem document itself; the app, the gunicorn worker and the liveness shortcut all answer with it."""
    phrase = _phrase(status)
    return {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail,
        "code": code or STATUS_CODES.get(status) or phrase.lower().replace(" ", "_").replace("-", "_"),
        **extra,
    }


def problem_response(status: int, detail: str, code: str | None = None, **extra: Any) -> Response:
    body = problem_document(status, detail, code, instance=request.path if request else None, **extra)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def validation_problem(error: ValidationError) -> Response:
    """flask-openapi3 calls this when a query fails its model: 422 with every field at fault."""
    errors = [
        {"location": ".".join(str(part) for part in item["loc"]), "message": item["msg"]} for item in error.errors()
    ]
    fields = ", ".join(sorted({entry["location"] for entry in errors})) or "request"
    return problem_response(422, f"invalid query parameter(s): {fields}", "unprocessable", errors=errors)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(error: Problem) -> Response:
        response = problem_response(error.status, error.detail, error.code, **error.extra)
        response.headers.update(error.headers)
        return response

    # An unhandled exception reaches this handler as InternalServerError, after Flask has logged its traceback and
    # with the request's teardown still seeing the exception, so the exceptions counter counts it. The client gets
    # a problem document, never the traceback.
    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 500:
            return problem_response(500, "the server failed to complete the request", "internal_error")
        response = problem_response(status, error.description or _phrase(status))
        if (
            status == 413
        ):  # Werkzeug's body limit: the rest stays unread, so the connection closes (service.server.worker)
            response.headers["Connection"] = "close"
        if status == 405 and error.response is None:
            allowed = getattr(error, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response
