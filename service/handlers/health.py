"""Probes: liveness says the process answers; readiness says it should get traffic; startup says warm-up is over."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from service.handlers import current_lifecycle
from service.models import Health

bp = APIBlueprint("health", __name__, abp_tags=[Tag(name="health", description="Kubernetes probes")])


def _answer(ready: bool, status: str, reason: str | None) -> tuple[Response, int]:
    body = Health(status=status, reason=reason).model_dump(exclude_none=True)  # type: ignore[arg-type]
    return jsonify(body), 200 if ready else 503


@bp.get("/livez", responses={200: Health}, summary="Liveness: cheap, in-process, checks no dependency")
def livez() -> tuple[Response, int]:
    return _answer(True, "ok", None)


@bp.get("/healthz", responses={200: Health}, summary="Alias of /livez")
def healthz() -> tuple[Response, int]:
    return _answer(True, "ok", None)


@bp.get("/readyz", responses={200: Health, 503: Health}, summary="Readiness: warmed up and not draining")
def readyz() -> tuple[Response, int]:
    return _answer(*current_lifecycle().readiness())


@bp.get("/startupz", responses={200: Health, 503: Health}, summary="Startup: warm-up finished")
def startupz() -> tuple[Response, int]:
    started = current_lifecycle().started
    return _answer(started, "ok" if started else "starting", None if started else "warm-up has not finished")
