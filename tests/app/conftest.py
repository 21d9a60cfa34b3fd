"""The in-process tier: the real app from ``create_app(settings)``, driven through Flask's test client.

No gunicorn and no sockets, so a handler change gets its answer in seconds. What needs a real process — the drain,
read and header timeouts, hostile clients, the worker's own answers and errors, metrics merged across processes —
stays in tests/integration. Settings come from a mapping, never from this process's environment.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry

from service import create_app
from service.config import load_settings
from service.metrics import instruments_of
from service.names import LIFECYCLE_EXTENSION
from service.server.shutdown import stop_worker

# Batch jobs of in-process apps live in a directory of this session's, never in the default /tmp one `make run` uses.
BATCH_DATA_DIR = tempfile.mkdtemp(prefix="flask-svc-app-batch-")
atexit.register(shutil.rmtree, BATCH_DATA_DIR, ignore_errors=True)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


# The apps made by the current test module: what they started (batch's reconcile loop) is stopped when it ends.
_made: list[Flask] = []


def make_app(**env: str) -> Flask:
    """A fresh app with these variables set (the rest at their defaults)."""
    # Anonymous batch jobs, as on `make run` (nothing reaches a test client); access: batch/test_views_access.py.
    defaults = {"FLASK_SVC_BATCH_DATA_DIR": BATCH_DATA_DIR, "FLASK_SVC_BATCH_AUTH": "none"}
    app = create_app(load_settings({**defaults, **env}))
    _made.append(app)
    return app


@pytest.fixture(scope="module", autouse=True)
def stop_what_the_apps_started() -> Iterator[None]:
    """Without it every app of the run kept its reconcile thread (and, traced, its span processor) running until
    pytest exited: hundreds of threads by the end of a run, and log lines written after pytest had closed its
    streams."""
    yield
    while _made:
        stop_worker(_made.pop())  # the worker's own stop path: features' stops, then tracing


@pytest.fixture(scope="module")
def app() -> Flask:
    return make_app()


@pytest.fixture(scope="module")
def debug_app() -> Flask:
    return make_app(FLASK_SVC_DEBUG_ENDPOINTS="true")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def debug_client(debug_app: Flask) -> Iterator[FlaskClient]:
    yield debug_app.test_client()
    # A test that switched a drill on must not leave it on for the next one.
    state = debug_app.extensions[LIFECYCLE_EXTENSION]
    state.fault = state.manually_unready = False


def sample(app: Flask, name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of one of the app's metric samples (0 when it has none yet)."""
    registry: CollectorRegistry | None = instruments_of(app).registry
    assert registry is not None, "metrics are off for this app"
    value = registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value
