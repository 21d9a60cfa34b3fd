"""What a view needs from the factory, read from the current app: the settings, the lifecycle, tracing, the model
identity. Every feature's web layer reads them through these accessors."""

from __future__ import annotations

from flask import current_app

from service.config import Settings
from service.core.schemas import ModelIdentity
from service.lifecycle import Lifecycle
from service.names import LIFECYCLE_EXTENSION, MODEL_IDENTITY_EXTENSION, SETTINGS_EXTENSION
from service.tracing import Tracing, tracing_of


def current_settings() -> Settings:
    settings: Settings = current_app.extensions[SETTINGS_EXTENSION]
    return settings


def current_lifecycle() -> Lifecycle:
    state: Lifecycle = current_app.extensions[LIFECYCLE_EXTENSION]
    return state


def current_tracing() -> Tracing | None:
    return tracing_of(current_app)


def served_model() -> ModelIdentity | None:
    """Which model this app serves; None without one."""
    identity: ModelIdentity | None = current_app.extensions.get(MODEL_IDENTITY_EXTENSION)
    return identity
