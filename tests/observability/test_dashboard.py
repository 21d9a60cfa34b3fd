"""Static checks of the Grafana dashboard JSON (its queries are run against a real Prometheus in test_prometheus.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "charts/flask-svc/files/dashboards/flask-svc.json"
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
