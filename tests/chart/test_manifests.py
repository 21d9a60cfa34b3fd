"""Assertions on the parsed manifests (yaml.safe_load_all): what the defaults and the scenarios actually deploy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.names import LIVEZ, READYZ, STARTUPZ
from tests.chart.conftest import (
    CHART,
    KUBE_NEWEST,
    KUBE_OLDEST,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    Helm,
    by_kind,
    one,
)

DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())
SELECTOR = {"app.kubernetes.io/name": "flask-svc", "app.kubernetes.io/instance": RELEASE}
SMOKE_SCRIPT = (CHART / "files" / "tests" / "smoke.py").read_text()


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The app container's environment: the ConfigMap it loads plus its own env (values or valueFrom)."""
    config = one(docs, "ConfigMap", RELEASE)["data"]
    own = {item["name"]: item.get("value", item.get("valueFrom")) for item in container(one(docs, "Deployment"))["env"]}
    return {**config, **own}


@pytest.fixture(scope="module")
def default(chart: Helm) -> list[dict[str, Any]]:
    return chart.scenario("default")


@pytest.fixture(scope="module")
def deployment(default: list[dict[str, Any]]) -> dict[str, Any]:
    return one(default, "Deployment", RELEASE)


# --- workload ------------------------------------------------------------------------------------------------------


def test_probes_hit_the_service_health_endpoints(deployment: dict[str, Any]) -> None:
    app = container(deployment)
    for probe, path in (("startupProbe", STARTUPZ), ("livenessProbe", LIVEZ), ("readinessProbe", READYZ)):
        assert app[probe]["httpGet"] == {"path": path, "port": "http"}, probe
        tuning = {k: v for k, v in DEFAULTS[probe].items() if k != "enabled"}
        assert {k: app[probe][k] for k in tuning} == tuning, probe


def test_probes_can_be_switched_off(chart: Helm) -> None:
    docs = chart.render("--set", "livenessProbe.enabled=false")
    app = container(one(docs, "Deployment"))
    assert "livenessProbe" not in app and "readinessProbe" in app and "startupProbe" in app


def test_ports_app_and_metrics(deployment: dict[str, Any]) -> None:
    ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
    assert ports == {"http": 8080, "metrics": 9797}


def test_restricted_pod_security(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    security = container(deployment)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["runAsGroup"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert not security["capabilities"].get("add")
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in pod and "hostPID" not in pod and "hostIPC" not in pod


def test_service_account_does_not_mount_a_token(default: list[dict[str, Any]], deployment: dict[str, Any]) -> None:
    account = one(default, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]


def test_resources_set_by_default(deployment: dict[str, Any]) -> None:
    resources = container(deployment)["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    # No CPU limit by default (values.yaml says why), so setting only the memory limit leaves none behind.
    assert set(resources["limits"]) == {"memory"}


def test_image_defaults_to_app_version_and_digest_wins(chart: Helm, deployment: dict[str, Any]) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container(deployment)["image"] == f"{DEFAULTS['image']['repository']}:{app_version}"
    digest = "sha256:" + "ab" * 32
    docs = chart.render("--set", f"image.digest={digest}", "--set", "image.tag=9.9.9")
    assert container(one(docs, "Deployment"))["image"] == f"{DEFAULTS['image']['repository']}@{digest}"


def test_selector_labels_are_name_and_instance_only(default: list[dict[str, Any]], deployment: dict[str, Any]) -> None:
    assert deployment["spec"]["selector"]["matchLabels"] == SELECTOR
    assert one(default, "Service", RELEASE)["spec"]["selector"] == SELECTOR
    assert one(default, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == SELECTOR
    assert one(default, "NetworkPolicy", RELEASE)["spec"]["podSelector"]["matchLabels"] == SELECTOR
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert SELECTOR.items() <= pod_labels.items()


def test_downward_api_env(deployment: dict[str, Any]) -> None:
    env = {item["name"]: item for item in container(deployment)["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_env_carries_the_values(default: list[dict[str, Any]]) -> None:
    env = env_of(default)
    gunicorn, config = DEFAULTS["gunicorn"], DEFAULTS["config"]
    expected = {
        "PORT": "8080",
        "METRICS_PORT": "9797",
        "WEB_CONCURRENCY": str(gunicorn["workers"]),
        "GUNICORN_THREADS": str(gunicorn["threads"]),
        "GUNICORN_TIMEOUT": str(gunicorn["timeout"]),
        "GUNICORN_GRACEFUL_TIMEOUT": str(gunicorn["gracefulTimeout"]),
        "GUNICORN_KEEPALIVE": str(gunicorn["keepalive"]),
        "FLASK_SVC_RELOAD": "false",
        "LOG_LEVEL": config["logLevel"],
        "LOG_FORMAT": config["logFormat"],
        "FLASK_SVC_MAX_UPLOAD_BYTES": str(config["maxUploadBytes"]),
        "FLASK_SVC_MAX_VOCABULARY": str(config["maxVocabulary"]),
        "FLASK_SVC_READ_TIMEOUT_SECONDS": str(config["readTimeoutSeconds"]),
        "FLASK_SVC_HEADER_TIMEOUT_SECONDS": str(config["headerTimeoutSeconds"]),
        "FLASK_SVC_LIVENESS_STALL_SECONDS": str(config["livenessStallSeconds"]),
        "FLASK_SVC_DEBUG_ENDPOINTS": "false",
        "PROMETHEUS_MULTIPROC_DIR": DEFAULTS["metricsDir"]["path"] + "/files",  # private: the service makes it
    }
    assert {k: env[k] for k in expected} == expected


def test_every_variable_the_chart_sets_is_one_the_service_reads(chart: Helm) -> None:
    from service.config import VARIABLE_ACCEPTS

    known = set(VARIABLE_ACCEPTS)
    rendered = chart.render("--set", "otel.endpoint=http://otel-collector.monitoring:4318")
    names = set(env_of(rendered))
    unknown = {name for name in names if name not in known and not name.startswith("OTEL_")}
    assert not unknown, f"the chart sets variables the service does not read: {sorted(unknown)}"


def test_config_change_rolls_the_pods(chart: Helm, deployment: dict[str, Any]) -> None:
    checksum = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    changed = one(chart.render("--set", "config.logLevel=debug"), "Deployment")
    assert changed["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != checksum


def test_writable_dirs_are_size_limited_emptydirs(deployment: dict[str, Any]) -> None:
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    metrics_dir = DEFAULTS["metricsDir"]["path"]
    assert set(mounts) >= {"/tmp", metrics_dir}
    for path, limit in (("/tmp", DEFAULTS["tmpDir"]["sizeLimit"]), (metrics_dir, DEFAULTS["metricsDir"]["sizeLimit"])):
        assert volumes[mounts[path]]["emptyDir"]["sizeLimit"] == limit, path


def test_tracing_off_without_endpoint(default: list[dict[str, Any]]) -> None:
    assert not [name for name in env_of(default) if name.startswith("OTEL_")]


def test_tracing_env_from_values(chart: Helm) -> None:
    docs = chart.scenario("keda")
    env = env_of(docs)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability.svc:4318"
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
    assert env["OTEL_SERVICE_NAME"] == RELEASE
    attributes = dict(pair.split("=", 1) for pair in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert attributes["k8s.pod.name"] == "$(POD_NAME)"
    assert attributes["deployment.environment"] == "ci"
    # $(POD_NAME) only expands when POD_NAME is defined earlier in the same env list.
    names = [item["name"] for item in container(one(docs, "Deployment"))["env"]]
    assert names.index("POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")


def test_topology_spread_gets_the_pod_selector(deployment: dict[str, Any]) -> None:
    (constraint,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert constraint["labelSelector"] == {"matchLabels": SELECTOR}
    assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"


# --- drain -----------------------------------------------------------------------------------------------------------


def test_grace_period_covers_the_drain(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    expected = (
        DEFAULTS["lifecycle"]["preStopSleepSeconds"]
        + DEFAULTS["gunicorn"]["gracefulTimeout"]
        + DEFAULTS["lifecycle"]["drainMarginSeconds"]
    )
    assert pod["terminationGracePeriodSeconds"] == expected


@pytest.mark.parametrize(("pre_stop", "graceful", "margin"), [(10, 40, 5), (1, 1, 0), (30, 120, 10)])
def test_grace_period_is_computed_from_the_parts(chart: Helm, pre_stop: int, graceful: int, margin: int) -> None:
    docs = chart.render(
        "--set",
        f"lifecycle.preStopSleepSeconds={pre_stop}",
        "--set",
        f"gunicorn.gracefulTimeout={graceful}",
        "--set",
        f"lifecycle.drainMarginSeconds={margin}",
    )
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == pre_stop + graceful + margin
    assert one(docs, "ConfigMap", RELEASE)["data"]["GUNICORN_GRACEFUL_TIMEOUT"] == str(graceful)
    assert container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"] == pre_stop


def test_explicit_longer_grace_period_is_kept(chart: Helm) -> None:
    deployment = one(chart.render("--set", "terminationGracePeriodSeconds=90"), "Deployment")
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 90


def test_pre_stop_native_sleep_from_1_30(chart: Helm) -> None:
    seconds = DEFAULTS["lifecycle"]["preStopSleepSeconds"]
    for version in (KUBE_NEWEST, "1.30.0"):
        hook = container(one(chart.render(kube_version=version), "Deployment"))["lifecycle"]["preStop"]
        assert hook == {"sleep": {"seconds": seconds}}, version
    old = container(one(chart.render(kube_version=KUBE_OLDEST), "Deployment"))["lifecycle"]["preStop"]
    assert KUBE_OLDEST.startswith("1.29")
    assert old == {"exec": {"command": ["sleep", str(seconds)]}}
    forced = chart.render("--set", "lifecycle.preStopAction=exec", kube_version=KUBE_NEWEST)
    assert "exec" in container(one(forced, "Deployment"))["lifecycle"]["preStop"]


def test_no_pre_stop_hook_at_zero(chart: Helm) -> None:
    app = container(one(chart.render("--set", "lifecycle.preStopSleepSeconds=0"), "Deployment"))
    assert "lifecycle" not in app


# --- scaling and availability ----------------------------------------------------------------------------------------


def test_hpa_on_by_default_and_replicas_left_out(default: list[dict[str, Any]], deployment: dict[str, Any]) -> None:
    assert "replicas" not in deployment["spec"]
    hpa = one(default, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": RELEASE}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    (cpu,) = spec["metrics"]
    assert cpu["resource"]["name"] == "cpu"
    assert cpu["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert spec["behavior"]["scaleUp"]["policies"] and spec["behavior"]["scaleDown"]["policies"]
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60


def test_hpa_memory_target_is_optional(chart: Helm) -> None:
    metrics = one(chart.scenario("monitoring"), "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert [m["resource"]["name"] for m in metrics] == ["cpu", "memory"]


def test_without_autoscaling_replicas_are_set(chart: Helm) -> None:
    docs = chart.scenario("minimal")
    assert not by_kind(docs, "HorizontalPodAutoscaler")
    assert one(docs, "Deployment")["spec"]["replicas"] == 1


def test_keda_replaces_the_hpa(chart: Helm) -> None:
    docs = chart.scenario("keda")
    assert not by_kind(docs, "HorizontalPodAutoscaler")
    assert "replicas" not in one(docs, "Deployment")["spec"]
    scaled = one(docs, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == RELEASE
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["threshold"] == "20"
    query = trigger["metadata"]["query"]
    assert "rate(flask_http_request_total" in query
    assert f'namespace="{NAMESPACE}"' in query and f'service="{RELEASE}-metrics"' in query
    assert trigger["metadata"]["ignoreNullValues"] == "false"
    hpa_config = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]
    assert hpa_config["behavior"] == DEFAULTS["autoscaling"]["behavior"]


def test_keda_query_is_templated(chart: Helm) -> None:
    query = "sum(up{namespace='{{ .Release.Namespace }}'})"
    docs = chart.render("--set", "keda.enabled=true", "--set", f"keda.prometheus.query={query}")
    (trigger,) = one(docs, "ScaledObject")["spec"]["triggers"]
    assert trigger["metadata"]["query"] == f"sum(up{{namespace='{NAMESPACE}'}})"


def test_pdb_allows_one_pod_down(default: list[dict[str, Any]]) -> None:
    pdb = one(default, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_rollout_never_loses_capacity(deployment: dict[str, Any]) -> None:
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


# --- network ---------------------------------------------------------------------------------------------------------


def ingress_rules(policy: dict[str, Any]) -> dict[str, list[dict[str, Any]] | None]:
    """Port name → `from` peers (None: from anywhere)."""
    rules: dict[str, list[dict[str, Any]] | None] = {}
    for rule in policy["spec"]["ingress"]:
        for port in rule["ports"]:
            rules[port["port"]] = rule.get("from")
    return rules


def test_network_policy_by_default(default: list[dict[str, Any]]) -> None:
    policy = one(default, "NetworkPolicy", RELEASE)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    rules = ingress_rules(policy)
    assert set(rules) == {"http", "metrics"}
    assert rules["http"] is None  # allowExternal: the app port is open
    metrics_from = rules["metrics"]
    assert metrics_from is not None
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in metrics_from
    test_pods = {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "helm-test"}
    assert {"podSelector": {"matchLabels": test_pods}} in metrics_from
    assert len(metrics_from) == 2
    (dns,) = policy["spec"]["egress"]  # no OTLP rule without an endpoint
    assert sorted((p["port"], p["protocol"]) for p in dns["ports"]) == [(53, "TCP"), (53, "UDP")]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}


def test_network_policy_restricted_app_port_and_otlp_egress(chart: Helm) -> None:
    rules = ingress_rules(one(chart.scenario("ingress"), "NetworkPolicy", RELEASE))
    peers = rules["http"]
    assert peers is not None
    selectors = [p["namespaceSelector"]["matchLabels"] for p in peers if "namespaceSelector" in p]
    namespaces = [selector["kubernetes.io/metadata.name"] for selector in selectors]
    assert namespaces == ["ingress-nginx", "gateway-system"]
    assert {"podSelector": {"matchLabels": {f"{RELEASE}-client": "true"}}} in peers

    egress = one(chart.scenario("keda"), "NetworkPolicy", RELEASE)["spec"]["egress"]
    otlp = [rule for rule in egress if {p["port"] for p in rule["ports"]} == {4317, 4318}]
    assert len(otlp) == 1
    assert otlp[0]["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]


def test_services_expose_one_port_each(default: list[dict[str, Any]]) -> None:
    app = one(default, "Service", RELEASE)
    assert app["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["port"], p["targetPort"]) for p in app["spec"]["ports"]] == [("http", 8080, "http")]
    metrics = one(default, "Service", f"{RELEASE}-metrics")
    assert [(p["name"], p["port"], p["targetPort"]) for p in metrics["spec"]["ports"]] == [("metrics", 9797, "metrics")]


def test_ingress_and_httproute_target_the_app_service(chart: Helm) -> None:
    docs = chart.scenario("ingress")
    ingress = one(docs, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "flask-svc.example.com"
    assert rule["http"]["paths"][0]["backend"] == {"service": {"name": RELEASE, "port": {"name": "http"}}}
    assert ingress["spec"]["tls"][0]["secretName"] == "flask-svc-tls"
    route = one(docs, "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateway-system", "sectionName": "https"}]
    (route_rule,) = route["spec"]["rules"]
    assert route_rule["backendRefs"] == [{"name": RELEASE, "port": 8080}]
    assert route_rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}}]
    assert route_rule["timeouts"] == {"request": "30s"}


# --- monitoring ------------------------------------------------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service(chart: Helm) -> None:
    docs = chart.scenario("monitoring")
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    metrics_service = one(docs, "Service", f"{RELEASE}-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics_service["metadata"]["labels"].items()
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "metrics"
    # The app Service must not match, or every pod would be scraped twice.
    app_labels = one(docs, "Service", RELEASE)["metadata"]["labels"]
    assert not monitor["spec"]["selector"]["matchLabels"].items() <= app_labels.items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics", "15s")


def test_prometheus_rule_wraps_the_rules_file(chart: Helm) -> None:
    rule = one(chart.scenario("monitoring"), "PrometheusRule")
    # Verbatim but for the release marker `job!=""`, which becomes this release's target labels.
    text = (CHART / "files" / "rules" / "flask-svc.rules.yaml").read_text()
    scoped = text.replace('job!=""', f'namespace="{NAMESPACE}",job="{RELEASE}-metrics"')
    assert scoped != text
    assert rule["spec"]["groups"] == yaml.safe_load(scoped)["groups"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_operator_resources_need_the_api_or_force(chart: Helm) -> None:
    without_api = chart.render(monitoring=False)
    assert not by_kind(without_api, "ServiceMonitor") and not by_kind(without_api, "PrometheusRule")
    forced = chart.render(
        "--set", "metrics.serviceMonitor.force=true", "--set", "metrics.prometheusRule.force=true", monitoring=False
    )
    assert by_kind(forced, "ServiceMonitor") and by_kind(forced, "PrometheusRule")
    off = chart.render("--set", "metrics.serviceMonitor.enabled=false", "--set", "metrics.prometheusRule.enabled=false")
    assert not by_kind(off, "ServiceMonitor") and not by_kind(off, "PrometheusRule")


def test_dashboard_configmap_carries_valid_json(chart: Helm) -> None:
    docs = chart.scenario("monitoring")
    dashboard = one(docs, "ConfigMap", f"{RELEASE}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"]["grafana_folder"] == "Services"
    (content,) = dashboard["data"].values()
    parsed = json.loads(content)
    shipped = json.loads((CHART / "files" / "dashboards" / "flask-svc.json").read_text())
    # The same dashboard, but for uid and title, which name the release (test_values_merging checks them), the
    # variables' preselection and the rows of features that are off collapsed (tests/observability checks those).
    changed = ("uid", "title", "templating", "panels")
    assert {k: v for k, v in parsed.items() if k not in changed} == {
        k: v for k, v in shipped.items() if k not in changed
    }
    flat = [p for row in parsed["panels"] for p in [{**row, "collapsed": False, "panels": []}, *row.get("panels", [])]]
    assert [{k: v for k, v in p.items() if k not in ("collapsed", "panels")} for p in flat] == [
        {k: v for k, v in p.items() if k not in ("collapsed", "panels")} for p in shipped["panels"]
    ]
    assert parsed.get("panels") or parsed.get("rows"), "the dashboard has no panels"


# --- helm test Jobs --------------------------------------------------------------------------------------------------


def test_helm_test_jobs(default: list[dict[str, Any]], deployment: dict[str, Any]) -> None:
    jobs = {job["metadata"]["name"]: job for job in by_kind(default, "Job")}
    assert set(jobs) == {f"{RELEASE}-test-api", f"{RELEASE}-test-metrics"}
    expected_urls = {"api": f"http://{RELEASE}:8080", "metrics": f"http://{RELEASE}-metrics:9797"}
    for job in jobs.values():
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert job["spec"]["backoffLimit"] == 0
        pod = job["spec"]["template"]["spec"]
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert "app.kubernetes.io/name" not in labels, "test pods must not match the Service selector"
        assert labels["app.kubernetes.io/component"] == "helm-test"
        (smoke,) = pod["containers"]
        assert smoke["image"] == container(deployment)["image"], "the tests reuse the app image"
        assert smoke["command"] == ["python", "-c"]
        assert smoke["args"] == [SMOKE_SCRIPT]
        env = {e["name"]: e["value"] for e in smoke["env"]}
        assert env["SMOKE_URL"] == expected_urls[env["SMOKE_CHECK"]]
        assert pod["securityContext"] == deployment["spec"]["template"]["spec"]["securityContext"]
        assert smoke["securityContext"] == container(deployment)["securityContext"]
        assert pod["automountServiceAccountToken"] is False


# --- every scenario --------------------------------------------------------------------------------------------------


_CLUSTER_SCOPED = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_resource_is_namespaced_and_labelled(chart: Helm, scenario: str) -> None:
    for doc in chart.scenario(scenario):
        metadata = doc["metadata"]
        if doc["kind"] in _CLUSTER_SCOPED:  # no namespace: the name carries the release so releases do not clash
            assert "namespace" not in metadata and RELEASE in metadata["name"], doc["kind"]
        else:
            assert metadata["namespace"] == NAMESPACE, doc["kind"]
        assert metadata["labels"]["app.kubernetes.io/instance"] == RELEASE, doc["kind"]
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "Helm", doc["kind"]


def test_names_follow_the_release(chart: Helm) -> None:
    docs = chart.render(release="demo")
    assert one(docs, "Deployment")["metadata"]["name"] == "demo-flask-svc"
    assert {doc["metadata"]["name"] for doc in by_kind(docs, "Service")} == {"demo-flask-svc", "demo-flask-svc-metrics"}
    long = chart.render("--set", "fullnameOverride=" + "x" * 63)
    assert all(len(doc["metadata"]["name"]) <= 63 for doc in long)


def test_notes_print_the_port_forward_commands(chart: Helm, tmp_path: Path) -> None:
    text = chart.notes(tmp_path)
    assert f"kubectl -n {NAMESPACE} port-forward service/{RELEASE} 8080:8080" in text
    assert f"kubectl -n {NAMESPACE} port-forward deployment/{RELEASE} 9797:9797" in text
    assert f"helm test {RELEASE} -n {NAMESPACE}" in text


def _configmap(rendered: list[dict[str, Any]]) -> dict[str, str]:
    (config,) = [d for d in by_kind(rendered, "ConfigMap") if "PORT" in d.get("data", {})]
    return dict(config["data"])


def test_model_off_by_default_even_in_an_ml_image(default: list[dict[str, Any]], deployment: dict[str, Any]) -> None:
    assert _configmap(default)["FLASK_SVC_MODEL_PATH"] == ""  # the -ml image's own path does not switch it on
    assert not deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith("-ml")
    assert "model" not in {v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]}


def test_model_from_the_image_runs_the_ml_variant(chart: Helm) -> None:
    rendered = chart.render(
        "--set", "model.enabled=true", "--set", "model.maxInstances=64", "--set", "model.trustedTypes={a.B,c.d.E}"
    )
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"].endswith(":0.1.0-ml")
    config = _configmap(rendered)
    assert "FLASK_SVC_MODEL_PATH" not in config  # the image names its model
    assert config["FLASK_SVC_MODEL_MAX_INSTANCES"] == "64"
    assert config["FLASK_SVC_MODEL_TRUSTED_TYPES"] == "a.B,c.d.E"
    assert config["FLASK_SVC_MODEL_ALLOW_PICKLE"] == "false"
    assert "model" not in {v["name"] for v in pod["volumes"]}


def test_a_pod_serving_the_model_gets_the_memory_measured_for_it(chart: Helm, deployment: dict[str, Any]) -> None:
    """The largest inference bodies on every thread at once need more than the text service (docs/model-serving.md,
    "Memory bounded by construction"): the model's memory replaces the defaults' and keeps the CPU request."""
    rendered = chart.render("--set", "model.enabled=true")
    resources = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "200m", "memory": "320Mi"}, "limits": {"memory": "512Mi"}}
    assert container(deployment)["resources"]["limits"] == {"memory": "384Mi"}  # the model off: unchanged


def test_model_from_a_pvc_is_mounted_read_only(chart: Helm) -> None:
    rendered = chart.render(
        "--set",
        "model.enabled=true",
        "--set",
        "model.source.type=pvc",
        "--set",
        "model.source.claimName=models",
        "--set",
        "model.source.file=iris/v2.skops",
        "--set",
        "model.name=iris",
    )
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "model")
    assert volume["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "model")
    assert mount == {"name": "model", "mountPath": "/models", "readOnly": True}
    config = _configmap(rendered)
    assert config["FLASK_SVC_MODEL_PATH"] == "/models/iris/v2.skops"
    assert config["FLASK_SVC_MODEL_NAME"] == "iris"


def test_model_from_an_image_volume(chart: Helm) -> None:
    rendered = chart.render(
        "--set", "model.enabled=true", "--set", "model.source.type=imageVolume",
        "--set", "model.source.reference=registry.example/models/iris:1", "--set", "model.source.file=iris.skops",
    )  # fmt: skip
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "model")
    assert volume["image"] == {"reference": "registry.example/models/iris:1", "pullPolicy": "IfNotPresent"}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "model")
    assert mount == {"name": "model", "mountPath": "/models", "readOnly": True}
    assert _configmap(rendered)["FLASK_SVC_MODEL_PATH"] == "/models/iris.skops"
