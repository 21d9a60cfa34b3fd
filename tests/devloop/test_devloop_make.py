"""The Make targets of mk/devloop.mk, as `make -n` prints them (no cluster needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.devloop.conftest import ROOT, load_yaml


def dry_run(*targets: str) -> str:
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", *targets],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_kind_up_creates_the_cluster_from_the_config_and_installs_metrics_server() -> None:
    text = dry_run("kind-up", "metrics-server")
    assert "create cluster --name flask-svc --config k8s/kind-config.yaml" in text
    assert "upgrade --install metrics-server metrics-server" in text
    assert "--version 3.13.0" in text and "-f k8s/metrics-server.yaml" in text
    assert "--kubelet-insecure-tls" in load_yaml(ROOT / "k8s" / "metrics-server.yaml")["args"]


@pytest.mark.parametrize(
    ("target", "needles"),
    [
        ("dev", ["skaffold dev --kube-context kind-flask-svc", "--port-forward=user"]),
        ("deploy", ["skaffold build", "skaffold deploy", "--build-artifacts", "skaffold verify"]),
        ("port-forward", ["port-forward --address 127.0.0.1", "deployment/flask-svc 8080:8080 9797:9797"]),
        ("port-forward-observability", ["grafana 3000:80", "9090:9090", "16686:16686", "-n monitoring"]),
        ("kind-down", ["kind delete cluster --name flask-svc"]),
        ("test-e2e", ["FLASK_SVC_E2E_REQUIRED=true", "-m e2e tests/e2e"]),
    ],
)
def test_targets(target: str, needles: list[str]) -> None:
    text = dry_run(target)
    for needle in needles:
        assert needle in text, f"make {target}: {needle!r} not in\n{text}"


def test_profiles_pass_through() -> None:
    assert "--profile observability" in dry_run("dev", "PROFILES=observability")


def _prerequisites(target: str) -> list[str]:
    """What ``target`` depends on, from make's own database (not from a search of its whole text)."""
    database = subprocess.run(
        ["make", "-pn", target], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    ).stdout
    rules = [line for line in database.splitlines() if line.startswith(f"{target}:") and "=" not in line]
    assert rules, f"make knows no rule for {target}"
    return [word for rule in rules for word in rule.split(":", 1)[1].split()]


def test_setup_runs_setup_devloop() -> None:
    assert "setup-devloop" in _prerequisites("setup")


def _setup_devloop(*overrides: str) -> subprocess.CompletedProcess[str]:
    """`make setup-devloop` for real, the chart tooling it follows taken as done (-o setup-chart)."""
    return subprocess.run(
        ["make", "--no-print-directory", "-o", "setup-chart", "setup-devloop", *overrides],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_setup_devloop_installs_checkov_only_where_it_is_missing(tmp_path: Path) -> None:
    # Where no checkov is installed, it sets out to install one: here with a Python that cannot make the
    # virtualenv, so it fails after announcing it rather than downloading anything.
    missing = _setup_devloop(f"TOOLS={tmp_path}", "PYTHON=false")
    assert missing.returncode != 0
    assert f"installing checkov 3.3.30 into {tmp_path}/checkov-venv" in missing.stdout
    # Where it is installed (the chart's tooling put it there), it does nothing and says nothing.
    stamp = tmp_path / "checkov-venv" / ".installed-3.3.30"
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    present = _setup_devloop(f"TOOLS={tmp_path}", "PYTHON=false")
    assert present.returncode == 0 and present.stdout == "", present.stdout + present.stderr


def _kind_install_commands() -> list[str]:
    """`make kind-install` as it would run (continuation lines joined), without the devloop-tools check."""
    text = dry_run("kind-install").replace("\\\n", " ")
    return [" ".join(line.split()) for line in text.splitlines() if line.split() and line.split()[0] != "missing=;"]


def test_kind_install_builds_loads_and_installs_that_image_without_a_registry() -> None:
    commands = [c for c in _kind_install_commands() if c.split()[0] in ("DOCKER_BUILDKIT=1", "kind", "helm")]
    build, load, install = commands
    assert build == "DOCKER_BUILDKIT=1 docker build -t flask-svc:local ."
    assert load == "kind load docker-image flask-svc:local --name flask-svc"
    assert install.startswith("helm upgrade --install flask-svc charts/flask-svc --kube-context kind-flask-svc")
    flags = install.split()
    sets = dict(flags[i + 1].split("=", 1) for i, flag in enumerate(flags) if flag == "--set")
    assert sets == {"image.repository": "flask-svc", "image.tag": "local", "image.pullPolicy": "Never"}

    # The chart accepts exactly those values and runs the loaded image, never pulling it.
    helm = ROOT / ".tools" / "bin" / "helm"
    if not helm.exists():
        pytest.skip("helm is not installed (make setup-chart installs it into .tools)")
    args = [str(helm), "template", "flask-svc", str(ROOT / "charts" / "flask-svc"), "--kube-version", "1.37.0"]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    (deployment,) = [d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "Deployment"]
    (app,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "flask-svc"]
    assert (app["image"], app["imagePullPolicy"]) == ("flask-svc:local", "Never")


def test_chart_page_install_commands_are_the_make_target() -> None:
    """The chart page's by-hand install (docs/chart.md) is what `make kind-install` runs, so both work from a clean
    clone."""
    readme = " ".join((ROOT / "docs" / "chart.md").read_text(encoding="utf-8").replace("\\\n", " ").split())
    for command in _kind_install_commands():
        if command.startswith("DOCKER_BUILDKIT=1 "):
            command = command.removeprefix("DOCKER_BUILDKIT=1 ")
        if command.split()[0] in ("docker", "kind", "helm"):
            assert command in readme, f"docs/chart.md does not show {command!r}"
    assert "make kind-install" in readme and "oci://ghcr.io/<owner>/charts/flask-svc" in readme
