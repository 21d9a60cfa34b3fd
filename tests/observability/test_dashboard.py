"""Static checks of the Grafana dashboard JSON (its queries are run against a real Prometheus in test_prometheus.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness.server import running_server

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "charts/flask-svc/files/dashboards/flask-svc.json"
CHART = ROOT / "charts/flask-svc"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
FILTERS = ('namespace=~"$namespace"', 'job=~"$job"', 'pod=~"$pod"')
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
BARE_METRIC = re.compile(r"\b(flask_[a-z0-9_]+|up)\b(?!\{)")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_identity_and_no_import_placeholders(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "flask-svc"
    assert dashboard["title"] == "flask-svc"
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["id"] is None  # provisioned or imported, never pinned to one Grafana's database id
    assert dashboard["editable"] is False  # provisioned from a ConfigMap: edits cannot be saved back
    assert "__inputs" not in dashboard and "__requires" not in dashboard
    assert "DS_" not in DASHBOARD.read_text(), "a ${DS_…} import placeholder breaks ConfigMap provisioning"


def test_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "namespace", "job", "pod"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "job", "pod"):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        assert re.fullmatch(rf"label_values\((flask_svc_build_info|up)(\{{.*\}})?, {name}\)", variable["query"])
    # namespace and pod may be missing outside Kubernetes: "All" must be a regex that also matches "no label".
    for name in ("namespace", "pod"):
        assert variables[name]["includeAll"] is True
        assert variables[name]["allValue"] == ".*"
    # job never widens to .*: `up` is shared by every scrape job.
    assert variables["job"]["includeAll"] is False


def test_every_panel_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_every_selector_follows_the_variables(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            assert not BARE_METRIC.search(expr), f"{panel['title']}: metric without label filters: {expr}"
            selectors = SELECTOR.findall(expr)
            assert selectors, expr
            for metric, matchers in selectors:
                for wanted in FILTERS:
                    assert wanted in matchers, f"{panel['title']}: {metric} lacks {wanted}"
            if "rate(" in expr:
                assert "[$__rate_interval]" in expr and not re.search(r"\[\d+[smhd]\]", expr), expr


def test_layout(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in panels(dashboard)]
    assert len(titles) == len(set(titles))
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_the_panels_the_issue_asks_for(dashboard: dict[str, Any]) -> None:
    exprs = {p["title"]: "\n".join(t["expr"] for t in p["targets"]) for p in panels(dashboard)}
    everything = "\n".join(exprs.values())
    assert "sum by (method, url_rule) (rate(flask_http_request_duration_seconds_count" in everything
    assert 'status=~"5.."' in exprs["5xx error ratio"]
    latency = exprs["Request latency p50 / p95 / p99"]
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (le) (rate(flask_http_request_duration_seconds_bucket{{" in latency
    for metric in (
        "flask_svc_http_requests_in_flight",
        "flask_svc_worker_threads",
        "flask_svc_analyzed_bytes_total",
        "flask_svc_tokens_total",
        "flask_svc_analysis_duration_seconds_bucket",
        "flask_svc_rejected_requests_total",
        "flask_svc_build_info",
        "flask_svc_otel_spans_dropped_total",
        "flask_svc_inference_duration_seconds_count",
        "flask_svc_inference_duration_seconds_bucket",
        "flask_svc_inference_instances_bucket",
    ):
        assert metric + "{" in everything, metric


def test_the_batch_pipeline_row(dashboard: dict[str, Any]) -> None:
    exprs = {p["title"]: "\n".join(t["expr"] for t in p["targets"]) for p in panels(dashboard)}
    assert exprs["Batch jobs by state"].startswith("max by (state) (flask_svc_batch_jobs{")  # one volume, many pods
    for metric in (
        "flask_svc_batch_stage_duration_seconds_count",
        "flask_svc_batch_stage_duration_seconds_sum",
        "flask_svc_batch_processed_bytes_total",
    ):
        assert metric + "{" in "\n".join(exprs.values()), metric


# Grafana units that read "per second"; a rate() shown as `short` reads as a plain count.
PER_SECOND_UNITS = {"reqps", "rps", "ops", "cps", "wps", "Bps", "binBps", "bps", "binbps"}
MEANS = re.compile(r"histogram_quantile|/|\bcount\(|\bmax\b|\bavg\b")


def unit_of(panel: dict[str, Any], target: dict[str, Any]) -> str:
    """The unit Grafana shows a target's series in: an override by its legend or refId, else the panel's."""
    unit = str(panel["fieldConfig"]["defaults"].get("unit", ""))
    for override in panel["fieldConfig"].get("overrides", []):
        matcher = override["matcher"]
        if (matcher["id"], matcher["options"]) in {
            ("byName", target.get("legendFormat")),
            ("byFrameRefID", target["refId"]),
        }:
            unit = next((str(p["value"]) for p in override["properties"] if p["id"] == "unit"), unit)
    return unit


def test_rates_are_shown_per_second(dashboard: dict[str, Any]) -> None:
    """A plain rate() of a counter (no quantile, no ratio) is a per-second number and says so in its unit."""
    checked = 0
    for panel in panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            if "rate(" in expr and not MEANS.search(expr):
                checked += 1
                assert unit_of(panel, target) in PER_SECOND_UNITS, (
                    panel["title"],
                    target["refId"],
                    unit_of(panel, target),
                )
    assert checked >= 8


# ---- as the chart renders it


def rendered(helm: str, *values: str) -> dict[str, Any]:
    args = [helm, "template", "shop", str(CHART), "--namespace", "team-a", "--kube-version", "1.31.0"]
    args += ["--show-only", "templates/dashboard-configmap.yaml", *values]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(yaml.safe_load(result.stdout)["data"]["flask-svc.json"]))


def rows(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["title"]: p for p in dashboard["panels"] if p["type"] == "row"}


def test_rendered_read_only_with_a_value_to_edit(helm: str) -> None:
    assert rendered(helm)["editable"] is False
    assert rendered(helm, "--set", "dashboard.editable=true")["editable"] is True


def test_rendered_preselects_the_release(helm: str) -> None:
    current = {v["name"]: v.get("current") for v in rendered(helm)["templating"]["list"]}
    assert current["namespace"] == {"selected": True, "text": ["team-a"], "value": ["team-a"]}
    job = "shop-flask-svc-metrics"  # the metrics Service: the job a ServiceMonitor gives its targets
    assert current["job"] == {"selected": True, "text": job, "value": job}
    assert current["pod"]["value"] == ["$__all"]


def test_rendered_collapses_the_rows_of_features_that_are_off(helm: str) -> None:
    shipped = load_all_panels(json.loads(DASHBOARD.read_text()))
    default = rendered(helm)
    off = {"Batch pipeline", "Model serving", "Tracing"}
    assert {title for title, row in rows(default).items() if row["collapsed"]} == off
    # Nothing lost: the collapsed rows hold their panels, in the same order.
    assert load_all_panels(default) == shipped
    on = rendered(
        helm, "--set", "batch.enabled=true", "--set", "model.enabled=true", "--set", "otel.endpoint=http://c:4318"
    )
    assert not any(row["collapsed"] for row in rows(on).values())
    assert on["panels"] == json.loads(DASHBOARD.read_text())["panels"]


def load_all_panels(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, type) of every panel, those inside collapsed rows in place."""
    out = []
    for panel in dashboard["panels"]:
        out.append((panel["title"], panel["type"]))
        out += [(inner["title"], inner["type"]) for inner in panel.get("panels", [])]
    return out


def test_a_default_install_shows_no_empty_panel(helm: str) -> None:
    """A default release (no model, no batch, no tracing), one request served: every panel Grafana queries on load
    (not in a collapsed row) reads metrics this service exports, or says 0 by `noValue` when there is nothing."""
    with running_server(env={"LOG_LEVEL": "warning"}) as server:
        text = {"Content-Type": "text/plain"}
        assert requests.post(f"{server.url}/api/v1/analyze", data=b"a b c", headers=text, timeout=5).status_code == 200
        scrape = requests.get(server.metrics_url, timeout=5).text
    exported = {sample.name for family in text_string_to_metric_families(scrape) for sample in family.samples}
    exported.add("up")  # Prometheus' own, per target

    def empty(panel: dict[str, Any]) -> set[str]:
        names = {m for t in panel["targets"] for m, _ in SELECTOR.findall(t["expr"])}
        return names - exported if "noValue" not in panel["fieldConfig"]["defaults"] else set()

    default = rendered(helm)
    shown = [p for p in default["panels"] if p["type"] != "row"]
    assert shown and not {p["title"]: empty(p) for p in shown if empty(p)}
    # The check has teeth: the model row's panels, were they shown, would be empty.
    hidden = rows(default)["Model serving"]["panels"]
    assert hidden and all(empty(p) for p in hidden)
