"""The application factory: builds the Flask app from the settings, wires every concern, then warms up.

Everything a request needs is set up here, through each concern's ``init_app`` (idempotent, and free of gunicorn):
logging, metrics, tracing, the per-request plumbing. The app works the same under gunicorn, `flask --app service
run` and a test's ``test_client()``; what it owns lives on ``app.extensions`` (keys in ``service.names``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI

from service import logs, metrics, origin, problems, requestctx, tracing
from service.analysis import AnalysisOptions, analyze_chunks
from service.config import Settings
from service.handlers import analysis, batch, debug, docs, health, home, ops
from service.lifecycle import Lifecycle
from service.models import ModelIdentity, problem_responses
from service.names import (
    ANALYSIS_PATHS,
    JOBS_PATH,
    LIFECYCLE_EXTENSION,
    MODEL_EXTENSION,
    MODEL_IDENTITY_EXTENSION,
    SETTINGS_EXTENSION,
)

log = logging.getLogger(__name__)
_WORKER_BOOT_ERROR = 3  # gunicorn halts the whole server when a worker exits with this


class ServiceApp(OpenAPI):
    """flask-openapi3's app, with Flask's ``ensure_sync`` answered from memory for plain functions.

    Flask asks it of every hook and view on every request, and each answer walks ``inspect.iscoroutinefunction``:
    with a handful of hooks that was several microseconds a request. A function's answer never changes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known_sync: set[Callable[..., Any]] = set()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if func in self._known_sync:
            return func
        wrapped: Callable[..., Any] = super().ensure_sync(func)
        if wrapped is func:  # a coroutine function gets a new wrapper each time, as Flask does
            self._known_sync.add(func)
        return wrapped


def build_app(settings: Settings) -> Flask:
    state = Lifecycle()
    app = ServiceApp(
        __name__,
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
    app.json.sort_keys = False  # type: ignore[attr-defined]  # fields in model order read better
    app.extensions[SETTINGS_EXTENSION] = settings
    app.extensions[LIFECYCLE_EXTENSION] = state

    logs.init_app(app, settings)
    problems.register_error_handlers(app)
    identity = _serve_model(app, settings) if settings.model_enabled else None
    instruments = metrics.init_app(app, settings, identity)
    requestctx.init_app(app, settings, state, instruments)
    origin.init_app(app)  # before any handler: another site's page changes nothing here
    app.register_api(health.bp)
    app.register_api(ops.bp)
    app.register_api(analysis.bp)
    batch.init_app(app, settings, instruments)
    app.register_blueprint(home.bp)  # plain blueprints: pages for people, kept out of the OpenAPI document
    app.register_blueprint(docs.bp)
    if settings.model_enabled:
        from service.handlers import inference

        app.register_api(inference.bp)
    if settings.debug_endpoints:
        app.register_blueprint(debug.bp)
        app.register_blueprint(home.toggles)
    app.after_request(home.secure_headers)
    app.add_url_rule("/openapi.json", "openapi", lambda: openapi_document(app))
    tracing.init_app(app, settings, instruments)
    app.wsgi_app = health.LivenessShortcut(app.wsgi_app)  # type: ignore[method-assign]  # outermost

    warm_up()
    state.mark_started()
    return app


def openapi_document(app: OpenAPI) -> Response:
    """The generated OpenAPI 3.1 document, with the text endpoints' three request-body forms spelled out."""
    document: dict[str, Any] = copy.deepcopy(app.api_doc)
    document["paths"].update(health.liveness_openapi())
    for path in ANALYSIS_PATHS:
        document["paths"][path]["post"]["requestBody"] = analysis.request_body_spec()
    if JOBS_PATH in document["paths"]:
        document["paths"][JOBS_PATH]["post"]["requestBody"] = analysis.request_body_spec(
            ("text/plain", "multipart/form-data")
        )
    # flask-openapi3 documents its validation errors as a JSON array; ours are problem documents, and only
    # operations that take parameters or a body can produce one.
    unprocessable = problem_responses(422)[422]
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop(422, None)
            if operation.get("parameters") or operation.get("requestBody"):
                responses["422"] = unprocessable
            else:
                responses.pop("422", None)
    if MODEL_EXTENSION in app.extensions:  # after the 422s above: the model routes answer theirs as application/json
        from service.handlers import inference

        inference.document(document)
    return jsonify(document)


def _serve_model(app: Flask, settings: Settings) -> ModelIdentity:
    """Load the model in this worker, before the app reports started. The master checked the file before forking,
    so a refusal here is rare (the file changed in between); it ends the worker with one line and gunicorn's
    boot-error status, which stops the server."""
    from service.handlers import inference
    from service.inference.loading import ModelRefused

    try:
        model = inference.load_into(app, settings)
    except ModelRefused as error:
        log.critical("model refused: %s", error)
        raise SystemExit(_WORKER_BOOT_ERROR) from None
    identity = ModelIdentity(name=model.name, version=model.version, sha256=model.sha256)
    app.extensions[MODEL_IDENTITY_EXTENSION] = identity
    return identity


def warm_up() -> None:
    """Run the pipeline once so the first real request pays no first-use cost (regex compile, imports)."""
    analyze_chunks([b"Warm-up: caf\xc3\xa9 na\xc3\xafve 42 don't"], AnalysisOptions(stopwords="en"))
