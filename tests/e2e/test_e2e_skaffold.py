"""The dev loop on the cluster: `skaffold run -p ci`, then a bounded `skaffold dev` that syncs an edited .py file
into the running pod, where gunicorn reloads it.

Both deploy the release skaffold.yaml names (flask-svc in namespace flask-svc), the same as the suite's own, and
`skaffold dev` removes it when it stops: tests/e2e/run.sh runs this module last, on its own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.kube_support import CONTEXT_ENV, REQUIRED_ENV, env_flag, run_tool, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
EDITED = REPO / "service" / "core" / "ops.py"


# On the local cluster (cluster/local-cluster.sh) images reach the node through a build script, not kind's loader.
LOCAL_CONTEXT = "flask-svc-local"


def profiles(*names: str) -> list[str]:
    if os.environ.get(CONTEXT_ENV) != LOCAL_CONTEXT:
        return ["--profile", ",".join(names)] if names else []
    # skaffold's artifact cache would skip the build script, and with it the copy into the node.
    return ["--profile", ",".join([*names, "local-cluster"]), "--cache-artifacts=false"]


@pytest.fixture(scope="module")
def skaffold() -> list[str]:
    found = shutil.which(os.environ.get("SKAFFOLD", "skaffold"))
    if found is None:
        reason = "skaffold is not on PATH (cluster/build.sh skaffold builds it)"
        if env_flag(REQUIRED_ENV):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    context = os.environ.get(CONTEXT_ENV)
    return [found] + (["--kube-context", context] if context else [])


class Output:
    """Collects a process's merged output on a thread, so the test can wait for a line without blocking."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip())

    def has(self, text: str) -> tuple[bool, str]:
        return any(text in line for line in self.lines), "\n".join(self.lines[-15:])


@pytest.mark.timeout(900)
def test_skaffold_run_ci_deploys_a_ready_release(skaffold: list[str]) -> None:
    env = os.environ | {"APP_CODE_OWNER": "0:0"}  # what the ci profile ships: code owned by root
    result = subprocess.run(
        [skaffold[0], "run", *profiles("ci"), *skaffold[1:], "--status-check=true"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert result.returncode == 0, f"skaffold run -p ci failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    status = run_tool(["kubectl", "-n", "flask-svc", "rollout", "status", "deployment/flask-svc", "--timeout=60s"])
    assert status.returncode == 0, status.stderr


@pytest.fixture
def edited_source() -> Iterator[str]:
    original = EDITED.read_text(encoding="utf-8")
    marker = f"skaffold-dev-e2e-{uuid.uuid4().hex[:12]}"
    try:
        yield marker
    finally:
        EDITED.write_text(original, encoding="utf-8")


@pytest.mark.timeout(900)
def test_skaffold_dev_syncs_an_edit_and_gunicorn_reloads(skaffold: list[str], edited_source: str) -> None:
    dev = subprocess.Popen(
        [skaffold[0], "dev", *profiles(), *skaffold[1:], "--port-forward=user", "--cleanup=true"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(dev)
    try:
        wait_until(lambda: _readyz_through_port_forward(dev, output), timeout=600, what="skaffold dev to deploy")
        # An edit made before skaffold watches the files would go unnoticed.
        wait_until(lambda: output.has("Watching for changes"), timeout=120, what="skaffold to watch the files")
        original = EDITED.read_text(encoding="utf-8")
        EDITED.write_text(f"{original}\n# {edited_source}\n", encoding="utf-8")
        wait_until(lambda: output.has("Syncing 1 files"), timeout=120, what="skaffold to sync the edit")

        def synced_and_reloaded() -> tuple[bool, str]:
            seen = run_tool(
                ["kubectl", "-n", "flask-svc", "exec", "deployment/flask-svc", "--", "grep", "-c", edited_source,
                 "/app/service/core/ops.py"]
            )  # fmt: skip
            logs = run_tool(["kubectl", "-n", "flask-svc", "logs", "deployment/flask-svc", "--since=5m"])
            reloaded = "ops.py modified" in logs.stdout or "ops.py modified" in logs.stderr
            return seen.returncode == 0 and reloaded, f"in the pod: {seen.returncode == 0}; reload logged: {reloaded}"

        wait_until(synced_and_reloaded, timeout=120, what="the edit in the pod and gunicorn's reload")
        wait_until(lambda: _readyz_through_port_forward(dev, output), timeout=120, what="the service after reload")
    finally:
        os.killpg(dev.pid, signal.SIGINT)  # as Ctrl+C: skaffold cleans up what it deployed
        try:
            dev.wait(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait(timeout=30)
    assert dev.returncode in (0, 130, -signal.SIGINT), "\n".join(output.lines[-30:])


def _forwarded_port(output: Output) -> int | None:
    """The local port skaffold forwards the app's 8080 to: 8080 when free, the next free one otherwise (a socket in
    TIME_WAIT from an earlier port-forward is enough to move it)."""
    for line in output.lines:
        if match := re.search(r"deployment/flask-svc.*remote port 8080 -> http://127\.0\.0\.1:(\d+)", line):
            return int(match[1])
    return None


def _readyz_through_port_forward(dev: subprocess.Popen[str], output: Output) -> tuple[bool, str]:
    if dev.poll() is not None:
        raise AssertionError("skaffold dev exited:\n" + "\n".join(output.lines[-40:]))
    port = _forwarded_port(output)
    if port is None:
        time.sleep(1)
        return False, "no port-forward announced yet; skaffold said:\n" + output.has("")[1]
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    except requests.RequestException as exc:
        time.sleep(1)
        return False, f"{type(exc).__name__}; skaffold said:\n" + output.has("")[1]
    return answer.status_code == 200, f"/readyz {answer.status_code}"
