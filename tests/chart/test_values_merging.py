"""Values that meet the chart's own settings: extraEnv, volumes and mounts merged by name (one entry per key, the
user's wins), labels merged before they are written, the CPU limit, the kube-prometheus-stack release label,
the NetworkPolicy's scraper and DNS peers, and one dashboard per release. Every render here is parsed by a YAML
loader that refuses duplicate keys (conftest.strict_load_all)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import RELEASE, SCENARIOS, Helm, by_kind, one, strict_load_all, values_file


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (app,) = [c for c in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"] if c["name"] == "flask-svc"]
    return app


def names(items: list[dict[str, Any]], key: str = "name") -> list[str]:
    return [item[key] for item in items]


# --- the strict loader itself ---------------------------------------------------------------------------------------


def test_the_strict_loader_refuses_a_key_written_twice() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate keys"):
        strict_load_all("metadata:\n  labels:\n    team: a\n    team: b\n")


# --- env --------------------------------------------------------------------------------------------------------------


def test_extra_env_replaces_the_chart_variable_in_place(chart: Helm) -> None:
    extra = [
        {"name": "POD_NAME", "value": "fixed"},
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=a"},
        {"name": "EXTRA", "value": "1"},
    ]
    docs = chart.render("--set", "otel.endpoint=http://collector:4318", "--set-json", f"extraEnv={json.dumps(extra)}")
    env = container(docs)["env"]
    assert len(names(env)) == len(set(names(env))), names(env)
    by_name = {item["name"]: item for item in env}
    assert by_name["POD_NAME"] == {"name": "POD_NAME", "value": "fixed"}
    assert by_name["OTEL_RESOURCE_ATTRIBUTES"] == {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=a"}
    # Chart variables keep their order (a $(VAR) reference needs VAR earlier); new ones follow.
    assert names(env)[-1] == "EXTRA"
    assert names(env).index("POD_NAME") < names(env).index("OTEL_RESOURCE_ATTRIBUTES")


def test_default_env_names_are_unique_in_every_scenario(chart: Helm) -> None:
    for scenario in SCENARIOS:
        env = container(chart.scenario(scenario))["env"]
        assert len(names(env)) == len(set(names(env))), (scenario, names(env))


# --- volumes and mounts -----------------------------------------------------------------------------------------------


def test_a_volume_named_like_the_chart_one_replaces_it(chart: Helm) -> None:
    volumes = [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}, {"name": "data", "emptyDir": {}}]
    mounts = [{"name": "data", "mountPath": "/tmp"}, {"name": "data", "mountPath": "/data"}]
    docs = chart.render(
        "--set-json", f"volumes={json.dumps(volumes)}", "--set-json", f"volumeMounts={json.dumps(mounts)}"
    )  # fmt: skip
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    by_name = {v["name"]: v for v in pod["volumes"]}
    assert sorted(by_name) == ["data", "metrics", "tmp"]
    assert by_name["tmp"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}
    by_path = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    assert len(by_path) == len(container(docs)["volumeMounts"]) == 3
    assert by_path["/tmp"]["name"] == "data"  # the user's mount at /tmp replaced the chart's
    assert by_path["/tmp/flask-svc-metrics"]["name"] == "metrics"


# --- labels -----------------------------------------------------------------------------------------------------------

OWN_LABELS = [
    "service.labels",
    "podLabels",
    "metrics.service.labels",
    "metrics.serviceMonitor.labels",
    "metrics.prometheusRule.labels",
    "metrics.monitorLabels",
    "dashboard.labels",
    "httpRoute.labels",
]


def test_common_and_own_labels_are_merged_before_they_are_written(chart: Helm) -> None:
    """The same key in commonLabels and a resource's own labels is written once, with the resource's value."""
    flags = ["--set", "commonLabels.team=common", "--set", "httpRoute.enabled=true"]
    for key in OWN_LABELS:
        flags += ["--set", f"{key}.team={key}"]
    docs = chart.render(*flags)  # the strict loader fails on a duplicate key
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "podLabels"
    assert deployment["metadata"]["labels"]["team"] == "common"
    assert one(docs, "Service", RELEASE)["metadata"]["labels"]["team"] == "service.labels"
    assert one(docs, "Service", f"{RELEASE}-metrics")["metadata"]["labels"]["team"] == "metrics.service.labels"
    assert one(docs, "ServiceMonitor")["metadata"]["labels"]["team"] == "metrics.serviceMonitor.labels"
    assert one(docs, "PrometheusRule")["metadata"]["labels"]["team"] == "metrics.prometheusRule.labels"
    assert one(docs, "HTTPRoute")["metadata"]["labels"]["team"] == "httpRoute.labels"
    assert one(docs, "ConfigMap", f"{RELEASE}-dashboard")["metadata"]["labels"]["team"] == "dashboard.labels"


def test_identity_labels_win_over_a_resource_own_labels(chart: Helm) -> None:
    """What selects a resource (the ServiceMonitor's selector, Grafana's sidecar label) cannot be overridden."""
    docs = chart.render(
        "--set", "metrics.service.labels.app\\.kubernetes\\.io/component=other",
        "--set-string", "dashboard.labels.grafana_dashboard=0",
    )  # fmt: skip
    assert one(docs, "Service", f"{RELEASE}-metrics")["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics"
    assert one(docs, "ConfigMap", f"{RELEASE}-dashboard")["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_pod_annotations_cannot_repeat_the_config_checksum(chart: Helm) -> None:
    docs = chart.render("--set", "podAnnotations.checksum/config=mine", "--set", "podAnnotations.team=a")
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["team"] == "a" and annotations["checksum/config"] != "mine"


# --- resources --------------------------------------------------------------------------------------------------------


def test_setting_only_the_memory_limit_leaves_no_cpu_limit(chart: Helm) -> None:
    resources = container(chart.render("--set", "resources.limits.memory=1Gi"))["resources"]
    assert resources["limits"] == {"memory": "1Gi"}
    assert resources["requests"] == {"cpu": "200m", "memory": "192Mi"}
    capped = container(chart.render("--set", "resources.limits.cpu=2"))["resources"]
    assert capped["limits"] == {"cpu": 2, "memory": "384Mi"}


# --- kube-prometheus-stack's release label ----------------------------------------------------------------------------


def test_monitor_labels_reach_the_service_monitor_and_the_rule(chart: Helm) -> None:
    docs = chart.render("--set", "metrics.monitorLabels.release=kube-prometheus-stack")
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert one(docs, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack", kind
    for doc in docs:
        if doc["kind"] not in ("ServiceMonitor", "PrometheusRule"):
            assert "release" not in doc["metadata"]["labels"], doc["kind"]


def test_notes_say_which_label_a_stock_prometheus_needs(chart: Helm, tmp_path: Path) -> None:
    text = chart.notes(tmp_path / "unset")
    assert "ServiceMonitor has no `release` label" in text and "PrometheusRule has no `release` label" in text
    assert "metrics.monitorLabels.release=<that name>" in text
    labelled = chart.notes(tmp_path / "set", "--set", "metrics.monitorLabels.release=kps")
    assert "ServiceMonitor carries release=kps" in labelled and "no `release` label" not in labelled
    off = chart.notes(
        tmp_path / "off",
        "--set", "metrics.serviceMonitor.enabled=false",
        "--set", "metrics.prometheusRule.enabled=false",
    )  # fmt: skip
    assert "release" not in off


# --- NetworkPolicy ----------------------------------------------------------------------------------------------------


def _dns_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The DNS egress rule of the app's and the test pods' policies."""
    rules = []
    for policy in by_kind(docs, "NetworkPolicy"):
        rules += [r for r in policy["spec"]["egress"] if {p["port"] for p in r["ports"]} & {53, 5353}]
    return rules


def test_dns_peers_and_ports_open_for_openshift_and_nodelocal_dns(chart: Helm) -> None:
    openshift = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}},
            "podSelector": {"matchLabels": {"dns.operator.openshift.io/daemonset-dns": "default"}},
        }
    ]
    docs = chart.render(
        "--set-json", f"networkPolicy.egress.dns={json.dumps(openshift)}",
        "--set-json", "networkPolicy.egress.dnsPorts=[53,5353]",
    )  # fmt: skip
    rules = _dns_rules(docs)
    assert len(rules) == 2  # the app's and the test pods' policies
    for rule in rules:
        assert rule["to"] == openshift
        assert sorted((p["port"], p["protocol"]) for p in rule["ports"]) == [
            (53, "TCP"), (53, "UDP"), (5353, "TCP"), (5353, "UDP"),
        ]  # fmt: skip
    nodelocal = [{"ipBlock": {"cidr": "169.254.20.10/32"}}]
    (rule, _) = _dns_rules(chart.render("--set-json", f"networkPolicy.egress.dns={json.dumps(nodelocal)}"))
    assert rule["to"] == nodelocal


def test_metrics_scrapers_are_configurable(chart: Helm) -> None:
    peers = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    docs = chart.render("--set-json", f"networkPolicy.ingress.metricsFrom={json.dumps(peers)}")
    policy = one(docs, "NetworkPolicy", RELEASE)
    (metrics,) = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "metrics"]
    assert peers[0] in metrics["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} not in metrics["from"]


def test_notes_say_who_may_scrape_and_resolve_and_how_to_open_it(chart: Helm, tmp_path: Path) -> None:
    text = chart.notes(tmp_path / "on")
    assert "networkPolicy.ingress.metricsFrom" in text and '"kubernetes.io/metadata.name":"monitoring"' in text
    assert "networkPolicy.egress.dns" in text and "169.254.20.10/32" in text and "openshift-dns" in text
    assert "NetworkPolicy" not in chart.notes(tmp_path / "off", "--set", "networkPolicy.enabled=false")


# --- dashboard --------------------------------------------------------------------------------------------------------


def _dashboard(chart: Helm, release: str, namespace_flags: tuple[str, ...] = ()) -> dict[str, Any]:
    docs = chart.render(*namespace_flags, release=release)
    (configmap,) = [d for d in by_kind(docs, "ConfigMap") if "flask-svc.json" in d.get("data", {})]
    parsed: dict[str, Any] = json.loads(configmap["data"]["flask-svc.json"])
    return parsed


def test_each_release_gets_its_own_dashboard_uid_and_title(chart: Helm) -> None:
    first, second = _dashboard(chart, "first"), _dashboard(chart, "second")
    assert first["uid"] != second["uid"] and first["title"] != second["title"]
    for dashboard in (first, second):
        assert len(dashboard["uid"]) <= 40 and dashboard["uid"].startswith("flask-svc-")
    assert first == _dashboard(chart, "first")  # stable across upgrades
    assert "first-flask-svc" in first["title"]


def test_monitoring_scenario_still_renders_one_dashboard(chart: Helm) -> None:
    docs = strict_load_all(chart.template("--values", str(values_file("monitoring"))).stdout)
    assert len([d for d in by_kind(docs, "ConfigMap") if "flask-svc.json" in d.get("data", {})]) == 1
