"""flask-svc: a Flask service built to run on Kubernetes.

Nothing happens at import: ``create_app`` builds the application when gunicorn (or a test) asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from flask import Flask

    from service.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Application factory. Without ``settings`` (``flask --app service run``) it reads them from the environment;
    gunicorn passes the ones its configuration read (``service.server.gunicorn_conf``)."""
    from service.app import build_app
    from service.config import load_settings

    return build_app(settings or load_settings())
