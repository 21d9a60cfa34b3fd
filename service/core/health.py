"""Probes: liveness says the process answers; readiness says it should get traffic; startup says warm-up is over."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from flask import Flask, Response, current_app
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from service.core.current import current_lifecycle, served_model
from service.core.schemas import Health
from service.lifecycle import ALIVE
from service.names import LIVENESS_PATHS, READYZ, STARTUPZ
from service.problems import PROBLEM_JSON, problem_document

bp = APIBlueprint("health", __name__, abp_tags=[Tag(name="health", description="Kubernetes probes")])


def _answer(ready: bool, status: str, reason: str | None) -> Response:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    mimetype = app.json.mimetype  # type: ignore[attr-defined]
    return Response(_health_body(app, status, reason), 200 if ready else 503, mimetype=mimetype)


@lru_cache(maxsize=16)  # a handful of (status, reason) pairs per app: each document is built once, not per probe
def _health_body(app: Flask, status: str, reason: str | None) -> bytes:
    """The Health document exactly as ``jsonify`` writes it; an app's model and JSON settings are fixed once built."""
    health = Health(status=status, reason=reason, model=served_model())  # type: ignore[arg-type]
    data: bytes = app.json.response(health.model_dump(exclude_none=True)).get_data()  # type: ignore[attr-defined]
    return data


@bp.get(READYZ, responses={200: Health, 503: Health}, summary="Readiness: warmed up and not draining")
def readyz() -> Response:
    return _answer(*current_lifecycle().readiness())


@bp.get(STARTUPZ, responses={200: Health, 503: Health}, summary="Startup: warm-up finished")
def startupz() -> Response:
    started = current_lifecycle().started
    return _answer(started, "ok" if started else "starting", None if started else "warm-up has not finished")


_ALIVE_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(ALIVE)))]
_NOT_ALLOWED = json.dumps(problem_document(405, "liveness answers GET and HEAD")).encode()
_NOT_ALLOWED_HEADERS = [
    ("Content-Type", PROBLEM_JSON),
    ("Content-Length", str(len(_NOT_ALLOWED))),
    ("Allow", "GET, HEAD"),
]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class LivenessShortcut:
    """Answers the liveness paths in front of Flask.

    Under gunicorn the worker's loop answers plain probes itself (``service.server.worker``); what reaches this is
    the rest: other methods (405), a probe with a body, and the app run outside gunicorn. Skipping the framework keeps
    those cheap too.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in LIVENESS_PATHS:
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            start_response("405 METHOD NOT ALLOWED", list(_NOT_ALLOWED_HEADERS))
            return [_NOT_ALLOWED]
        start_response("200 OK", list(_ALIVE_HEADERS))
        return [] if method == "HEAD" else [ALIVE]


def liveness_openapi() -> dict[str, Any]:
    """OpenAPI path items for the liveness paths, which no Flask view serves."""
    operation = {
        "tags": ["health"],
        "summary": "Liveness: answered in front of the framework, checks no dependency",
        "responses": {
            "200": {
                "description": "The worker answers",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
            }
        },
    }
    return {path: {"get": {**operation, "operationId": f"get_{path.strip('/')}"}} for path in LIVENESS_PATHS}
