"""The real tools against every ci/ scenario: helm lint --strict, kubernetes-validate --strict on the oldest and
newest Kubernetes, and checkov with the repository's .checkov.yaml (0 failed checks)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import CHART, KUBE_VERSIONS, REPO, SCENARIOS, Helm, values_file

# Kinds kubernetes-validate has no schema for: the chart's custom resources. Anything else without a schema is a typo.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "HTTPRoute", "ScaledObject"}


def test_every_required_scenario_exists() -> None:
    assert {"default", "minimal", "keda", "monitoring", "ingress", "batch"} <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict(chart: Helm, scenario: str) -> None:
    result = chart.run("lint", "--strict", str(CHART), "--values", str(values_file(scenario)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_kubernetes_validate_strict(rendered_dir: Path, kube_version: str) -> None:
    paths = sorted(rendered_dir.glob(f"*-k{kube_version}.yaml"))
    assert len(paths) == len(SCENARIOS)  # no file arguments would only print the help and exit 0
    proc = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", kube_version, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "ERROR" not in output and "FATAL" not in output, output
    unvalidated = set(re.findall(r"Couldn't find schema for kind (\w+)", output))
    assert unvalidated <= CUSTOM_KINDS, f"no schema for {unvalidated - CUSTOM_KINDS}: wrong apiVersion?"
    core = [
        doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc and doc["kind"] not in CUSTOM_KINDS
    ]
    assert output.count(" passed for resource ") == len(core), "not every core resource was validated"


def test_checkov_finds_nothing(checkov: Path, rendered_dir: Path) -> None:
    proc = subprocess.run(
        [str(checkov), "--config-file", str(REPO / ".checkov.yaml"), "--directory", str(rendered_dir), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=rendered_dir,
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    kubernetes = [r for r in reports if r.get("check_type") == "kubernetes"]
    assert kubernetes, proc.stdout[:2000] + proc.stderr[-2000:]
    summary = kubernetes[0]["summary"]
    failed = [f"{c['check_id']} {c['resource']} {c['file_path']}" for c in kubernetes[0]["results"]["failed_checks"]]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    documents = sum(1 for path in rendered_dir.glob("*.yaml") for doc in yaml.safe_load_all(path.read_text()) if doc)
    assert summary["resource_count"] >= documents, "checkov did not see every rendered resource"
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_checkov_skips_carry_reasons() -> None:
    """Every skipped check in .checkov.yaml is preceded by a comment saying why."""
    lines = (REPO / ".checkov.yaml").read_text().splitlines()
    config = yaml.safe_load("\n".join(lines))
    skips = config.get("skip-check", [])
    for check in skips:
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {check}")
        assert lines[index - 1].strip().startswith("#"), f"{check} is skipped without a reason"
