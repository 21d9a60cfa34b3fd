"""The application factory: builds the Flask app from the settings, wires the service's own concerns, then each
feature in turn.

Every concern and feature has an ``init_app`` (idempotent, and free of gunicorn): logging, problems, metrics, the
per-request plumbing, the core web layer, then the features, then tracing. The app works the same under gunicorn,
`flask --app service run` and a test's ``test_client()``; what it owns lives on ``app.extensions`` (keys in
``service.names``). A new feature is a folder with an ``init_app(app, settings)`` and one line in ``FEATURES``.
"""

from __future__ import annotations

from flask import Flask

from service import core, logs, metrics, origin, page, problems, requestctx, tracing
from service.analysis import web as analysis_web
from service.batch import web as batch_web
from service.config import Settings
from service.inference import web as inference_web
from service.lifecycle import Lifecycle

# In this order: their routes appear in the OpenAPI document in it; the page reads what the others serve.
FEATURES = (analysis_web, batch_web, inference_web, page)


def build_app(settings: Settings) -> Flask:
    state = Lifecycle()
    app = core.make_app(settings, state)
    logs.init_app(app, settings)
    problems.register_error_handlers(app)
    instruments = metrics.init_app(app, settings)
    requestctx.init_app(app, settings, state, instruments)
    origin.init_app(app)  # before any view: another site's page changes nothing here
    core.init_app(app, settings)
    for feature in FEATURES:
        feature.init_app(app, settings)
    tracing.init_app(app, settings, instruments)
    metrics.record_build(app, settings)
    core.answer_liveness_first(app)  # outermost
    state.mark_started()
    return app
