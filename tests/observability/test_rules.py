"""The alert rules shipped with the chart, checked and unit-tested by the real promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts/flask-svc/files/rules/flask-svc.rules.yaml"
RULES_TEST = Path(__file__).with_name("rules_test.yaml")
CHART = ROOT / "charts/flask-svc"
# Two releases as the release tests name them: (release, namespace).
RELEASES = {"blue": "team-a", "green": "team-b"}
RELEASE_TESTS = ("release_rules_test.yaml", "release_removed_test.yaml")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (make setup-observability)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def load_rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text())
    assert list(doc) == ["groups"], "plain rules file: the chart wraps these groups in a PrometheusRule"
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_alert_is_labelled_and_documented() -> None:
    alerts = [rule for rule in load_rules() if "alert" in rule]
    assert alerts
    for rule in alerts:
        labels = rule.get("labels", {})
        annotations = rule.get("annotations", {})
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels.get("severity") in {"critical", "warning", "info"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= set(annotations), rule["alert"]


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    """Each alert name appears in rules_test.yaml both with expected alerts and with none expected."""
    names = {str(rule["alert"]) for rule in load_rules() if "alert" in rule}
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert names - firing == set(), "alerts without a firing test"
    assert names - quiet == set(), "alerts without a not-firing test"


def test_burn_rate_alerts_follow_the_sre_workbook() -> None:
    """Availability SLO 99.5 %: 1h/5m at 14.4x and 6h/30m at 6x page, 3d/6h at 1x tickets."""
    burns = {
        (rule["labels"]["long_window"], rule["labels"]["short_window"]): rule
        for rule in load_rules()
        if rule.get("alert") == "FlaskSvcErrorBudgetBurn"
    }
    expected = {("1h", "5m"): ("14.4", "critical"), ("6h", "30m"): ("6", "critical"), ("3d", "6h"): ("1", "warning")}
    assert set(burns) == set(expected)
    for (long_w, short_w), (factor, severity) in expected.items():
        rule = burns[(long_w, short_w)]
        expr = str(rule["expr"])
        assert f'ratio_rate{long_w}{{job!=""}} > ({factor} * (1 - 0.995))' in expr
        assert f'ratio_rate{short_w}{{job!=""}} > ({factor} * (1 - 0.995))' in expr
        assert rule["labels"]["severity"] == severity


def test_every_selector_carries_the_release_marker() -> None:
    """The chart scopes the rules by replacing `job!=""`: a selector without it would judge every release."""
    for name, expr in ((rule.get("record") or rule["alert"], str(rule["expr"])) for rule in load_rules()):
        selectors = re.findall(r"\b(up|flask_\w+|namespace_job:[\w:]+)(\{[^}]*\})?", expr)
        bare = [metric for metric, matchers in selectors if not re.match(r'\{job!=""[,}]', matchers)]
        assert not bare, f"{name}: selectors without the release marker: {bare}"


def rendered_groups(helm: str, release: str, namespace: str, *values: str) -> list[dict[str, Any]]:
    result = run(
        helm, "template", release, str(CHART), "--namespace", namespace, "--kube-version", "1.31.0",
        "--api-versions", "monitoring.coreos.com/v1", "--show-only", "templates/prometheusrule.yaml", *values,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    groups: list[dict[str, Any]] = yaml.safe_load(result.stdout)["spec"]["groups"]
    return groups


def test_rendered_rules_select_only_their_release(helm: str) -> None:
    scope = 'namespace="team-a",job="blue-flask-svc-metrics"'
    exprs = [str(rule["expr"]) for group in rendered_groups(helm, "blue", "team-a") for rule in group["rules"]]
    assert exprs and all(scope in expr for expr in exprs)
    assert not any('job!=""' in expr for expr in exprs)
    # With a jobLabel the operator takes `job` from that label of the metrics Service.
    job_label = "metrics.serviceMonitor.jobLabel=app.kubernetes.io/instance"
    by_label = rendered_groups(helm, "blue", "team-a", "--set", job_label)
    assert all('namespace="team-a",job="blue"' in str(rule["expr"]) for group in by_label for rule in group["rules"])


def test_promtool_two_releases_one_removed(promtool: str, helm: str, tmp_path: Path) -> None:
    """Rendered for two releases: each alert fires once, for its own release; once blue is uninstalled (its
    PrometheusRule gone with it), green's rules never alert for blue's vanished targets."""
    for release, namespace in RELEASES.items():
        groups = rendered_groups(helm, release, namespace)
        (tmp_path / f"{release}.rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
        assert run(promtool, "check", "rules", str(tmp_path / f"{release}.rules.yaml")).returncode == 0
    for name in RELEASE_TESTS:
        shutil.copy(Path(__file__).with_name(name), tmp_path / name)
    result = run(promtool, "test", "rules", *(str(tmp_path / name) for name in RELEASE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
