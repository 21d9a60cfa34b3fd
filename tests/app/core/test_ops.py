"""/version and /api/v1/info in process."""

from __future__ import annotations

import os
import platform
import socket

from flask.testing import FlaskClient

from tests.app.conftest import make_app


def test_version_reports_the_build() -> None:
    client = make_app(
        FLASK_SVC_VERSION="9.8.7", FLASK_SVC_GIT_COMMIT="abc123", FLASK_SVC_BUILD_DATE="2026-11-21"
    ).test_client()
    assert client.get("/version").get_json() == {"version": "9.8.7", "commit": "abc123", "build_date": "2026-11-21"}


def test_info_uses_the_downward_api_variables() -> None:
    client = make_app(POD_NAME="web-7d9f", POD_NAMESPACE="shop", NODE_NAME="node-a", GUNICORN_THREADS="3").test_client()
    body = client.get("/api/v1/info").get_json()
    assert (body["pod"], body["namespace"], body["node"]) == ("web-7d9f", "shop", "node-a")
    assert body["python"] == platform.python_version() and body["pid"] == os.getpid()
    assert (body["workers"], body["threads"]) == (1, 3)
    assert body["uptime_seconds"] >= 0


def test_info_falls_back_to_the_hostname(client: FlaskClient) -> None:
    body = client.get("/api/v1/info").get_json()
    assert body["pod"] == body["hostname"] == socket.gethostname()
    assert body["namespace"] is None and body["node"] is None
