"""HTTP handlers, one module per family: health, ops, analysis, debug, inference."""

from __future__ import annotations

from flask import current_app

from service.config import Settings
from service.lifecycle import Lifecycle
from service.models import ModelIdentity


def current_settings() -> Settings:
    settings: Settings = current_app.extensions["flask_svc.settings"]
    return settings


def current_lifecycle() -> Lifecycle:
    state: Lifecycle = current_app.extensions["flask_svc.lifecycle"]
    return state


def served_model() -> ModelIdentity | None:
    """Which model this app serves; None without one."""
    identity: ModelIdentity | None = current_app.extensions.get("flask_svc.model_identity")
    return identity
