"""skaffold.yaml, the kind config and the k8s/ values files: valid against their schemas, wired to each other,
and accepted by the real chart (rendered with helm)."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.devloop.conftest import CHART_SCHEMA, KIND_SCHEMA, ROOT, SKAFFOLD_SCHEMA, load_schema, load_yaml

SKAFFOLD = ROOT / "skaffold.yaml"
CHART = ROOT / "charts" / "flask-svc"
VALUES_DEV = ROOT / "k8s" / "values-dev.yaml"
VALUES_E2E = ROOT / "k8s" / "values-e2e.yaml"
VALUES_OBS = ROOT / "k8s" / "values-observability.yaml"
DIGEST_PINNED = re.compile(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def validate(instance: Any, schema: dict[str, Any]) -> None:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    errors = sorted(cls(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


# --- skaffold profiles, applied the way skaffold applies them (RFC 6902 patches) ----------------------------


def _pointer(path: str) -> list[str]:
    assert path.startswith("/"), path
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def apply_patch(doc: Any, patches: list[dict[str, Any]]) -> Any:
    """add / remove / replace, which is all skaffold.yaml uses."""
    doc = copy.deepcopy(doc)
    for patch in patches:
        *parents, last = _pointer(patch["path"])
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        op = patch["op"]
        if isinstance(target, list):
            index = len(target) if last == "-" else int(last)
            if op == "add":
                assert index <= len(target), patch
                target.insert(index, copy.deepcopy(patch["value"]))
            elif op == "remove":
                del target[index]
            elif op == "replace":
                target[index] = copy.deepcopy(patch["value"])
            else:
                raise AssertionError(f"unsupported op {op}")
        else:
            if op in ("remove", "replace"):
                assert last in target, f"{patch['path']} does not exist"
            if op == "remove":
                del target[last]
            elif op in ("add", "replace"):
                target[last] = copy.deepcopy(patch["value"])
            else:
                raise AssertionError(f"unsupported op {op}")
    return doc


@pytest.fixture(scope="module")
def skaffold() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(SKAFFOLD)
    return data


def with_profiles(config: dict[str, Any], *names: str) -> dict[str, Any]:
    profiles = {p["name"]: p for p in config["profiles"]}
    out = {k: v for k, v in config.items() if k != "profiles"}
    for name in names:
        out = apply_patch(out, profiles[name].get("patches", []))
    return out


def releases(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in config["deploy"]["helm"]["releases"]}


# --- schemas --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profiles", [(), ("observability",), ("ci",), ("ci", "observability")])
def test_skaffold_validates_against_v4beta14(skaffold: dict[str, Any], schema_dir: Path, profiles: tuple) -> None:
    schema = load_schema(schema_dir, SKAFFOLD_SCHEMA)
    assert skaffold["apiVersion"] == "skaffold/v4beta14"
    validate(skaffold, schema)
    validate(with_profiles(skaffold, *profiles), schema)


def test_kind_config_validates_and_pins_the_node_image(schema_dir: Path) -> None:
    config = load_yaml(ROOT / "k8s" / "kind-config.yaml")
    validate(config, load_schema(schema_dir, KIND_SCHEMA))
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    images = [n["image"] for n in config["nodes"]]
    assert images and all(DIGEST_PINNED.match(i) and i.startswith("kindest/node:") for i in images), images


def test_chart_yaml_validates(schema_dir: Path) -> None:
    validate(load_yaml(CHART / "Chart.yaml"), load_schema(schema_dir, CHART_SCHEMA))


# --- skaffold wiring ------------------------------------------------------------------------------------------


def test_artifact_release_and_image_wiring(skaffold: dict[str, Any]) -> None:
    (artifact,) = skaffold["build"]["artifacts"]
    assert artifact["image"] == "flask-svc" and "docker" in artifact
    assert (ROOT / artifact["docker"]["dockerfile"]).is_file()
    app = releases(skaffold)["flask-svc"]
    assert app["chartPath"] == "charts/flask-svc" and (ROOT / app["chartPath"] / "Chart.yaml").is_file()
    assert app["setValueTemplates"] == {
        "image.repository": "{{.IMAGE_REPO_flask_svc}}",
        "image.tag": "{{.IMAGE_TAG_flask_svc}}",
    }
    assert app["valuesFiles"] == ["k8s/values-dev.yaml"]


def test_sync_copies_python_into_the_image_code_dir(skaffold: dict[str, Any]) -> None:
    (rule,) = skaffold["build"]["artifacts"][0]["sync"]["manual"]
    # service/x.py lands at /app/service/x.py: the contract's code location.
    assert rule == {"src": "service/**/*.py", "dest": "/app"}
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "/app/service" in dockerfile and "WORKDIR /app" in dockerfile


def test_port_forwards_app_and_metrics(skaffold: dict[str, Any]) -> None:
    ports = {(f["resourceName"], f["port"], f["localPort"]) for f in skaffold["portForward"]}
    assert ports == {("flask-svc", 8080, 8080), ("flask-svc", 9797, 9797)}
    observed = with_profiles(skaffold, "observability")["portForward"]
    local = {f["localPort"] for f in observed}
    assert {8080, 9797, 3000, 9090, 16686} <= local


def test_verify_calls_readyz_and_analyze_in_the_cluster(skaffold: dict[str, Any]) -> None:
    (case,) = skaffold["verify"]
    assert case["executionMode"] == {"kubernetesCluster": {}}
    container = case["container"]
    assert container["image"] == "flask-svc"  # the artifact just built
    script = "\n".join(container["args"])
    assert "/readyz" in script and "/api/v1/analyze" in script
    compile(script, "verify", "exec")  # it is Python the image's interpreter runs
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["FLASK_SVC_URL"] == "http://flask-svc.flask-svc.svc.cluster.local:8080"


def test_observability_profile_installs_the_stack_first(skaffold: dict[str, Any]) -> None:
    config = with_profiles(skaffold, "observability")
    order = [r["name"] for r in config["deploy"]["helm"]["releases"]]
    assert order == ["kube-prometheus-stack", "jaeger", "otel-collector", "flask-svc"]
    for release in config["deploy"]["helm"]["releases"][:-1]:
        assert SEMVER.match(str(release["version"])), f"{release['name']} is not pinned: {release.get('version')}"
        assert release["repo"].startswith("https://")
        assert release["namespace"] == "monitoring"
        for values in release["valuesFiles"]:
            assert (ROOT / values).is_file(), values
    assert releases(config)["flask-svc"]["valuesFiles"] == ["k8s/values-dev.yaml", "k8s/values-observability.yaml"]


def test_ci_profile_is_the_shipped_image_without_sync(skaffold: dict[str, Any]) -> None:
    for config in (with_profiles(skaffold, "ci"), with_profiles(skaffold, "ci", "observability")):
        (artifact,) = config["build"]["artifacts"]
        assert "sync" not in artifact
        assert "buildArgs" not in artifact["docker"]  # no dev-only ownership change of /app/service
        assert releases(config)["flask-svc"]["valuesFiles"][0] == "k8s/values-e2e.yaml"


# --- the values files against the chart -------------------------------------------------------------------


def _paths(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(tree, dict) and tree:
        return [p for k, v in tree.items() for p in _paths(v, (*prefix, str(k)))]
    return [prefix]


@pytest.mark.parametrize("values", [VALUES_DEV, VALUES_E2E, VALUES_OBS], ids=lambda p: p.name)
def test_values_files_only_use_keys_the_chart_has(values: Path) -> None:
    chart_values = load_yaml(CHART / "values.yaml")
    for path in _paths(load_yaml(values)):
        node = chart_values
        for key in path:
            if node == {}:
                break  # a free-form map of the chart (labels, annotations): its keys are data
            assert isinstance(node, dict) and key in node, f"{values.name}: {'.'.join(path)} is not a chart value"
            node = node[key]
    schema = CHART / "values.schema.json"
    if schema.exists():
        merged = copy.deepcopy(chart_values)
        _merge(merged, load_yaml(values))
        validate(merged, yaml.safe_load(schema.read_text(encoding="utf-8")))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> None:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def _helm() -> str:
    helm = ROOT / ".tools" / "bin" / "helm"
    found = str(helm) if helm.exists() else shutil.which("helm")
    if not found:
        pytest.skip("helm is not installed (make setup-chart installs it into .tools)")
    return found


def render(*values: Path, api_versions: tuple[str, ...] = ()) -> dict[tuple[str, str], dict[str, Any]]:
    # The kind node version: the chart requires >= 1.29 and helm template defaults to its own client version.
    cmd = [_helm(), "template", "flask-svc", str(CHART), "--namespace", "flask-svc", "--kube-version", "1.37.0"]
    cmd += ["--set", "image.repository=flask-svc", "--set", "image.tag=dev"]
    for v in values:
        cmd += ["-f", str(v)]
    for api in api_versions:
        cmd += ["--api-versions", api]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _app_container(objs: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    deployment = objs[("Deployment", "flask-svc")]
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "flask-svc"]
    return container


def test_dev_values_render_a_syncable_single_debug_pod() -> None:
    objs = render(VALUES_DEV)
    deployment = objs[("Deployment", "flask-svc")]
    assert deployment["spec"]["replicas"] == 1
    assert not [k for k in objs if k[0] == "HorizontalPodAutoscaler"]
    config = objs[("ConfigMap", "flask-svc")]["data"]
    assert config["FLASK_SVC_DEBUG_ENDPOINTS"] == "true"
    assert config["FLASK_SVC_RELOAD"] == "true"
    assert _app_container(objs)["securityContext"]["readOnlyRootFilesystem"] is False
    assert _app_container(objs)["securityContext"]["runAsNonRoot"] is True  # still never root
    # What skaffold's verify Job and port-forwards address.
    assert ("Service", "flask-svc") in objs


def test_e2e_values_keep_the_production_posture() -> None:
    objs = render(VALUES_E2E)
    config = objs[("ConfigMap", "flask-svc")]["data"]
    assert config["FLASK_SVC_RELOAD"] == "false"
    assert config["FLASK_SVC_DEBUG_ENDPOINTS"] == "true"  # /burn for the HPA test
    assert _app_container(objs)["securityContext"]["readOnlyRootFilesystem"] is True
    hpa = objs[("HorizontalPodAutoscaler", "flask-svc")]["spec"]
    assert hpa["minReplicas"] < hpa["maxReplicas"] <= 4
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] <= 60
    resources = _app_container(objs)["resources"]
    assert "cpu" in resources["requests"]


def test_observability_values_wire_traces_metrics_and_dashboard(skaffold: dict[str, Any]) -> None:
    objs = render(VALUES_DEV, VALUES_OBS, api_versions=("monitoring.coreos.com/v1",))
    config = objs[("ConfigMap", "flask-svc")]["data"]
    collector = load_yaml(ROOT / "k8s" / "observability" / "otel-collector.yaml")
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith(f"http://{collector['fullnameOverride']}.monitoring.svc")
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4318")

    kps = load_yaml(ROOT / "k8s" / "observability" / "kube-prometheus-stack.yaml")
    sidecar = kps["grafana"]["sidecar"]["dashboards"]
    dashboards = [d for (kind, _), d in objs.items() if kind == "ConfigMap" and "flask-svc.json" in d.get("data", {})]
    assert len(dashboards) == 1
    assert dashboards[0]["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
    assert sidecar["folderAnnotation"] in dashboards[0]["metadata"]["annotations"]

    # The dev Prometheus keeps kube-prometheus-stack's stock selectors (release=<its release name> on
    # ServiceMonitors and PrometheusRules, templates/prometheus/prometheus.yaml of the 82.x chart), and flask-svc's
    # monitors carry that label, as a user's must. The chart's NetworkPolicy lets its namespace scrape.
    spec = kps["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert f"{kind}Selector" not in spec and f"{kind}SelectorNilUsesHelmValues" not in spec, kind
    kps_release = releases(with_profiles(skaffold, "observability"))["kube-prometheus-stack"]["name"]
    for kind in ("ServiceMonitor", "PrometheusRule"):
        monitors = [doc for (k, _), doc in objs.items() if k == kind]
        assert monitors, f"no {kind} rendered"
        assert all(m["metadata"]["labels"].get("release") == kps_release for m in monitors), kind
    policy = objs[("NetworkPolicy", "flask-svc")]["spec"]
    metrics_rule = [r for r in policy["ingress"] if any(p["port"] == "metrics" for p in r["ports"])]
    peers = [peer.get("namespaceSelector", {}).get("matchLabels", {}) for r in metrics_rule for peer in r["from"]]
    kps_namespace = releases(with_profiles(skaffold, "observability"))["kube-prometheus-stack"]["namespace"]
    assert {"kubernetes.io/metadata.name": kps_namespace} in peers

    jaeger = load_yaml(ROOT / "k8s" / "observability" / "jaeger.yaml")
    exporter = collector["config"]["exporters"]["otlp_http/jaeger"]["endpoint"]
    assert exporter == f"http://{jaeger['fullnameOverride']}.monitoring.svc.cluster.local:4318"
    assert collector["config"]["service"]["pipelines"]["traces"]["exporters"] == ["otlp_http/jaeger"]
