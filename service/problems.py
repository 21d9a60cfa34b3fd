"""RFC 9457 problem details: the one shape every error takes, 404/405/500 included."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
# Stable codes for the statuses clients meet; HTTP reason phrases change between Python versions (413).
STATUS_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    500: "internal_error",
    503: "service_unavailable",
}
log = logging.getLogger(__name__)


class Problem(Exception):
    """Raise to answer with a problem document; ``code`` is a stable machine-readable slug."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem_response(status: int, detail: str, code: str | None = None, **extra: Any) -> Response:
    phrase = HTTPStatus(status).phrase
    body = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail,
        "code": code or STATUS_CODES.get(status) or phrase.lower().replace(" ", "_").replace("-", "_"),
        "instance": request.path if request else None,
        **extra,
    }
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
        return problem_response(error.status, error.detail, error.code, **error.extra)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        response = problem_response(status, error.description or HTTPStatus(status).phrase)
        if status == 405 and error.response is None:
            allowed = getattr(error, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # The traceback goes to the log, never to the client.
        log.exception("unhandled error", extra={"path": request.path})
        return problem_response(500, "the server failed to complete the request", "internal_error")
