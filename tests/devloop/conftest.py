"""Shared fixtures for the dev-loop tests: paths, the shared JSON schemas, a loopback HTTP server."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR_ENV = "FLASK_SVC_SCHEMA_DIR"
# The files in that directory (the names in ../shared/schemas; ci.yaml fetches them under the same names).
SKAFFOLD_SCHEMA = "skaffold-v4beta14.json"
KIND_SCHEMA = "kind-cluster-v1alpha4.schemastore.json"
CHART_SCHEMA = "helm-chart-yaml.schemastore.json"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    """The directory of the shared JSON schemas (../shared/schemas on the project's machines). Missing is a
    skip on a developer's machine and a failure under CI=true: CI must validate, not pass by default."""
    raw = os.environ.get(SCHEMA_DIR_ENV, "")
    problem = ""
    if not raw:
        problem = f"{SCHEMA_DIR_ENV} is not set"
    elif not Path(raw).is_dir():
        problem = f"{SCHEMA_DIR_ENV}={raw} is not a directory"
    if problem:
        message = f"{problem}: it names the directory of the shared JSON schemas (.ci/run sets it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return Path(raw)


def load_schema(schema_dir: Path, name: str) -> dict[str, Any]:
    path = schema_dir / name
    if not path.is_file():
        message = f"schema {name} is missing from {schema_dir}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


class _Handler(BaseHTTPRequestHandler):
    """GET /status/<code> answers that code; POST echoes the body; anything else 200 "ok"."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.hits += 1  # type: ignore[attr-defined]
        if self.path.startswith("/status/"):
            self._send(int(self.path.rsplit("/", 1)[1]), b"status")
        else:
            self._send(200, b"ok")

    def do_POST(self) -> None:
        self.server.hits += 1  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", "0"))
        self._send(200, self.rfile.read(length))


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
