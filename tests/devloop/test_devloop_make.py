"""The Make targets of mk/devloop.mk, as `make -n` prints them (no cluster needed)."""

from __future__ import annotations

import subprocess

import pytest

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


def test_setup_is_part_of_make_setup() -> None:
    assert (
        "setup-devloop"
        in subprocess.run(
            ["make", "-pn", "setup"], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
        ).stdout
    )
