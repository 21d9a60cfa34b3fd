"""What is running and where: /version and /api/v1/info."""

from __future__ import annotations

import os
import platform
import socket

from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from service.core.current import current_lifecycle, current_settings, served_model
from service.core.schemas import Info, Version
from service.names import API_PREFIX

bp = APIBlueprint("ops", __name__, abp_tags=[Tag(name="ops", description="Build and runtime information")])


@bp.get("/version", responses={200: Version}, summary="Version, commit and build date of the running build")
def version() -> Response:
    settings = current_settings()
    return jsonify(
        Version(
            version=settings.version, commit=settings.git_commit, build_date=settings.build_date, model=served_model()
        ).model_dump(exclude_none=True)
    )


@bp.get(
    f"{API_PREFIX}/info", responses={200: Info}, summary="Pod, node, runtime, process model, build and the model served"
)
def info() -> Response:
    return jsonify(info_document().model_dump())


def info_document() -> Info:
    """What /api/v1/info answers; the home page shows the same document."""
    settings = current_settings()
    state = current_lifecycle()
    hostname = socket.gethostname()
    return Info(
        hostname=hostname,
        pod=settings.pod_name or hostname,
        namespace=settings.pod_namespace or None,
        node=settings.node_name or None,
        python=platform.python_version(),
        workers=settings.workers,
        threads=settings.threads,
        pid=os.getpid(),
        uptime_seconds=round(state.uptime(), 3),
        version=settings.version,
        commit=settings.git_commit,
        model=served_model(),
    )
