"""The factory: what it wires, what it keeps on app.extensions, and that apps with different settings coexist."""

from __future__ import annotations

import contextlib
import logging

from flask import Flask
from flask.testing import FlaskClient

from service import logs, metrics, tracing
from service.config import load_settings
from service.core.openapi import ServiceApp
from service.lifecycle import Lifecycle
from service.metrics import OFF, instruments_of
from service.names import (
    ANALYSIS_PATHS,
    LIFECYCLE_EXTENSION,
    LIVENESS_PATHS,
    METRICS_EXTENSION,
    PROBE_PATHS,
    SETTINGS_EXTENSION,
    TRACING_EXTENSION,
)
from tests.app.conftest import BATCH_DATA_DIR, make_app, sample


def test_everything_the_app_owns_is_on_its_extensions(app: Flask) -> None:
    expected = load_settings({"FLASK_SVC_BATCH_DATA_DIR": BATCH_DATA_DIR, "FLASK_SVC_BATCH_AUTH": "none"})
    assert app.extensions[SETTINGS_EXTENSION] == expected
    assert isinstance(app.extensions[LIFECYCLE_EXTENSION], Lifecycle) and app.extensions[LIFECYCLE_EXTENSION].started
    assert app.extensions[METRICS_EXTENSION].registry is not None
    assert app.extensions[TRACING_EXTENSION] is None  # no OTEL_* variable: tracing off


def test_the_routes_use_the_shared_names(app: Flask) -> None:
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert set(ANALYSIS_PATHS) <= rules
    assert set(PROBE_PATHS) - set(LIVENESS_PATHS) <= rules  # liveness is answered in front of Flask


def test_apps_with_different_settings_live_side_by_side() -> None:
    on, off = make_app(), make_app(FLASK_SVC_METRICS="false")
    assert instruments_of(off) is OFF and instruments_of(on) is not OFF
    for app in (on, off):
        assert app.test_client().post(ANALYSIS_PATHS[0], json={"text": "a b"}).status_code == 200
    assert sample(on, "flask_svc_tokens_total") == 2  # the app with metrics off counted nowhere
    debug = make_app(FLASK_SVC_DEBUG_ENDPOINTS="true")
    assert debug.test_client().get("/status/201").status_code == 201
    assert on.test_client().get("/status/201").status_code == 404


def test_init_app_twice_changes_nothing(app: Flask) -> None:
    settings = app.extensions[SETTINGS_EXTENSION]
    instruments = instruments_of(app)
    assert metrics.init_app(app, settings) is instruments
    assert tracing.init_app(app, settings, instruments) is None
    root = logging.getLogger()
    before = list(root.handlers)
    logs.init_app(app, settings)
    assert root.handlers == before


def test_the_openapi_document_spells_out_the_text_bodies(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    for path in ANALYSIS_PATHS:
        operation = document["paths"][path]["post"]
        assert set(operation["requestBody"]["content"]) == {"text/plain", "application/json", "multipart/form-data"}
        assert "422" in operation["responses"]
    # Operations without parameters or a body cannot fail validation: no 422 there.
    assert "422" not in document["paths"]["/version"]["get"]["responses"]


def test_ensure_sync_answers_each_function_once_and_keeps_flasks_answer() -> None:
    app = make_app()
    assert isinstance(app, ServiceApp)

    def hook() -> None:
        return None

    assert app.ensure_sync(hook) is hook and app.ensure_sync(hook) is hook
    assert hook in app._known_sync

    async def coroutine() -> None:
        return None

    # Flask wraps a coroutine function (it needs asgiref for that, and says so); it is never remembered as plain.
    with contextlib.suppress(RuntimeError):
        app.ensure_sync(coroutine)
    assert coroutine not in app._known_sync
