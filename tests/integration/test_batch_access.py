"""Access to the batch API on a real gunicorn: a refused upload is answered before its body is read and leaves
nothing behind; a bad token setting stops start with one line; the start log names the variable when jobs will be
refused. The decisions themselves are in tests/app/batch/test_views_access.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from harness.net import free_port
from harness.server import ROOT, Server, running_server

MiB = 1024 * 1024
ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("access") / "tokens"
    path.write_text(f"{ALICE},alice\n{BOB},bob\n")
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batch-data")


@pytest.fixture(scope="module")
def server(tokens: Path, data_dir: Path) -> Iterator[Server]:
    env = {
        "FLASK_SVC_BATCH_AUTH": "token",
        "FLASK_SVC_BATCH_AUTH_TOKENS_FILE": str(tokens),
        "FLASK_SVC_BATCH_DATA_DIR": str(data_dir),
        "FLASK_SVC_BATCH_MAX_UPLOAD_BYTES": str(64 * MiB),
    }
    with running_server(env) as srv:
        yield srv


def _kept(data_dir: Path) -> list[str]:
    jobs = [p.name for p in data_dir.iterdir() if not p.name.startswith(".")]
    incoming = data_dir / ".incoming"
    return jobs + ([p.name for p in incoming.iterdir()] if incoming.exists() else [])


def _chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // MiB):
        yield b"word " * (MiB // 5) + b"w" * (MiB % 5)


def test_a_refused_upload_keeps_nothing(server: Server, data_dir: Path) -> None:
    for headers in ({}, {"Authorization": "Bearer forged"}):
        response = requests.post(
            f"{server.url}/api/v1/jobs",
            data=_chunks(16 * MiB),  # chunked: the refusal cannot come from Content-Length
            headers={"Content-Type": "text/plain", **headers},
            timeout=60,
        )
        assert response.status_code == 401, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert _kept(data_dir) == []


def test_owners_over_http(server: Server) -> None:
    created = requests.post(
        f"{server.url}/api/v1/jobs",
        data=b"some words " * 100,
        headers={"Content-Type": "text/plain", "Authorization": f"Bearer {ALICE}"},
        timeout=30,
    )
    assert created.status_code == 202 and created.json()["owner"] == "alice"
    url = f"{server.url}/api/v1/jobs/{created.json()['id']}"
    assert requests.get(url, headers={"Authorization": f"Bearer {BOB}"}, timeout=10).status_code == 404
    assert requests.delete(url, headers={"Authorization": f"Bearer {ALICE}"}, timeout=10).status_code == 200


def _start(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_SVC_")}
    full = {**base, "HOST": "127.0.0.1", "PORT": str(free_port()), "METRICS_PORT": str(free_port()), **env}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FLASK_SVC_BATCH_AUTH": "token"}, "FLASK_SVC_BATCH_AUTH_TOKENS_FILE"),
        (
            {"FLASK_SVC_BATCH_AUTH": "token", "FLASK_SVC_BATCH_AUTH_TOKENS_FILE": "/nonexistent/tokens"},
            "FLASK_SVC_BATCH_AUTH_TOKENS_FILE",
        ),
        ({"FLASK_SVC_BATCH_AUTH": "kubernetes", "KUBERNETES_SERVICE_HOST": ""}, "FLASK_SVC_BATCH_AUTH"),
    ],
)
def test_an_unusable_mode_stops_start_with_one_line(env: dict[str, str], named: str) -> None:
    result = _start(env, "-m", "service")
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert named in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("host", "auth", "noted"), [("0.0.0.0", "", True), ("0.0.0.0", "none", False), ("127.0.0.1", "", False)]
)
def test_the_start_log_says_when_jobs_will_be_refused(host: str, auth: str, noted: bool) -> None:
    # gunicorn's `when_ready` hook in a process of its own (it reads the environment); nothing binds.
    script = (
        "import types, service.server.gunicorn_conf as conf\n"
        "lines = []\n"
        "conf.when_ready(types.SimpleNamespace(log=types.SimpleNamespace(warning=lines.append, info=print)))\n"
        "print('\\n'.join(lines))\n"
    )
    result = _start({"HOST": host, "FLASK_SVC_BATCH_AUTH": auth, "FLASK_SVC_METRICS": "false"}, "-c", script)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if "FLASK_SVC_BATCH_AUTH" in line]
    assert len(notes) == (1 if noted else 0), result.stdout
