"""The page: the service's home page for people (``views``: its forms for the analysis, the model and the batch
jobs, the debug toggles), the API docs (``docs``: Swagger UI, served from the wheel), their templates and assets.

Plain blueprints, kept out of the OpenAPI document. The page reads which features are on from the app."""

from __future__ import annotations

from flask import Flask

from service.config import Settings
from service.page import docs, views


def init_app(app: Flask, settings: Settings) -> None:
    app.register_blueprint(views.bp)
    app.register_blueprint(docs.bp)
    if settings.debug_endpoints:
        app.register_blueprint(views.toggles)
    app.after_request(views.secure_headers)
