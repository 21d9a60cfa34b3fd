"""The service's own web layer, whatever features it serves: the app itself (``make_app``), the probes (``health``),
build and runtime information (``ops``), the debug endpoints (``debug``), the OpenAPI document (``openapi``), the
models they answer with (``schemas``) and the accessors every view reads the app through (``current``)."""

from __future__ import annotations

from flask import Flask
from flask_openapi3.models.info import Info

from service import problems
from service.config import Settings
from service.core import debug, health, ops
from service.core.openapi import ServiceApp, amend, openapi_document
from service.lifecycle import Lifecycle
from service.names import LIFECYCLE_EXTENSION, SETTINGS_EXTENSION


def make_app(settings: Settings, state: Lifecycle) -> ServiceApp:
    """The bare app: its OpenAPI description, body limits and JSON form, with the settings and lifecycle on it."""
    app = ServiceApp(
        "service.app",
        info=Info(
            title="flask-svc",
            version=settings.version,
            description="Text analysis on a production-grade Flask service",
        ),
        doc_ui=False,
        security_schemes={},
        validation_error_status="422",
        validation_error_callback=problems.validation_problem,
    )
    # Werkzeug refuses the read that follows reaching its limit, even at end of body: one byte of headroom makes
    # a body of exactly the configured size pass and one byte more fail, for every body form.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + 1
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_upload_bytes + 1  # a filename-less "file" part is a field
    app.extensions[SETTINGS_EXTENSION] = settings
    app.extensions[LIFECYCLE_EXTENSION] = state
    return app


def init_app(app: ServiceApp, settings: Settings) -> None:
    """The probes, the build information, the OpenAPI document and, when enabled, the debug endpoints."""
    app.register_api(health.bp)
    app.register_api(ops.bp)
    if settings.debug_endpoints:
        app.register_blueprint(debug.bp)
    amend(app, lambda document: document["paths"].update(health.liveness_openapi()))
    app.add_url_rule("/openapi.json", "openapi", lambda: openapi_document(app))


def answer_liveness_first(app: Flask) -> None:
    """Liveness is answered in front of everything else (tracing, metrics, Flask): call last."""
    app.wsgi_app = health.LivenessShortcut(app.wsgi_app)  # type: ignore[method-assign]
