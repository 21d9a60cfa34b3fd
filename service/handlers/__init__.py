"""HTTP handlers, one module per family: health, ops, analysis, debug."""

from __future__ import annotations

from flask import current_app

from service.config import Settings
from service.lifecycle import Lifecycle


def current_settings() -> Settings:
    settings: Settings = current_app.extensions["flask_svc.settings"]
    return settings


def current_lifecycle() -> Lifecycle:
    state: Lifecycle = current_app.extensions["flask_svc.lifecycle"]
    return state
