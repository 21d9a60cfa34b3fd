"""A second release taken through its whole life with Helm 4, which applies server-side.

In a namespace that enforces the restricted Pod Security Standard: install with an `extraEnv` entry that replaces
one of the chart's own variables and a volume named like one of the chart's (Helm 4's server-side apply refuses
duplicate list keys), with every monitoring object on and labelled as a stock kube-prometheus-stack selects them;
then upgrade with a changed value, roll back, uninstall, and find nothing of the release left. The tests run in
file order and share the release.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.kube_support import (
    REQUIRED_ENV,
    api_warnings,
    delete_namespace,
    env_flag,
    helm4_binary,
    own_namespace,
    own_release,
    pod_is_ready,
    restricted_namespace,
    run_tool,
    wait_until,
)

pytestmark = pytest.mark.e2e

NAMESPACE = own_namespace("helm4")
RELEASE = own_release("lifecycle")
CHART = "charts/flask-svc"
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"
# What kube-prometheus-stack's default serviceMonitorSelector and ruleSelector match (its release name).
STOCK_SELECTOR = "release=kube-prometheus-stack"
OVERRIDE = {"name": "NODE_NAME", "value": "set-by-extraEnv"}


@pytest.fixture(scope="module")
def helm4() -> str:
    found = helm4_binary()
    if found is None:
        reason = "helm4 is not on PATH (make setup-e2e installs it)"
        if env_flag(REQUIRED_ENV):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def namespace(core: Any, upstream_crds: list[str], helm4: str) -> Iterator[str]:
    delete_namespace(core, NAMESPACE)
    restricted_namespace(core, NAMESPACE)
    yield NAMESPACE
    run_tool([helm4, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--ignore-not-found"])
    delete_namespace(core, NAMESPACE)


def image_values() -> list[str]:
    repository, _, tag = os.environ.get("FLASK_SVC_E2E_IMAGE", "flask-svc:e2e").rpartition(":")
    return ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}"]


def helm4_run(helm4: str, *args: str) -> Any:
    result = run_tool([helm4, *args])
    assert result.returncode == 0, f"helm {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}"
    assert not api_warnings(result.stderr), f"the API server warned:\n{result.stderr}"
    return result


def release_pods(core: Any) -> list[Any]:
    items = core.list_namespaced_pod(NAMESPACE, label_selector=INSTANCE).items
    hooks = [p for p in items if "helm.sh/hook" in (p.metadata.annotations or {})]
    return [p for p in items if p.metadata.deletion_timestamp is None and p not in hooks]


def serving_hash(apps: Any) -> tuple[str | None, str]:
    """The pod-template hash of the one ReplicaSet serving every wanted replica, or None while a rollout is still
    moving pods between ReplicaSets (``helm --wait`` can return before the old one has scaled to zero)."""
    deployment = apps.list_namespaced_deployment(NAMESPACE, label_selector=INSTANCE).items[0]
    sets = apps.list_namespaced_replica_set(NAMESPACE, label_selector=INSTANCE).items
    wanted = deployment.spec.replicas
    active = [rs for rs in sets if (rs.spec.replicas or 0) > 0]
    seen = ", ".join(f"{rs.metadata.name} {rs.status.ready_replicas or 0}/{rs.spec.replicas}" for rs in active)
    if len(active) == 1 and active[0].status.ready_replicas == wanted:
        return str(active[0].metadata.labels["pod-template-hash"]), seen
    return None, seen


def template_hash(apps: Any) -> str:
    """``serving_hash`` once the rollout has settled."""
    found: dict[str, str] = {}

    def settled() -> tuple[bool, str]:
        hash_, seen = serving_hash(apps)
        if hash_:
            found["hash"] = hash_
        return hash_ is not None, f"ReplicaSets with replicas: {seen}"

    wait_until(settled, timeout=180, what="one ReplicaSet serving every replica")
    return found["hash"]


FIRST: dict[str, str] = {}


@pytest.mark.timeout(420)
def test_helm4_installs_with_overrides_and_no_warning(helm4: str, namespace: str, apps: Any, core: Any) -> None:
    helm4_run(
        helm4, "install", RELEASE, CHART, "--namespace", namespace,
        "-f", "charts/flask-svc/ci/monitoring-values.yaml", *image_values(),
        "--set-json", f"extraEnv=[{json.dumps(OVERRIDE)}]",
        "--set-json", 'volumes=[{"name": "tmp", "emptyDir": {"sizeLimit": "32Mi"}}]',
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    pods = release_pods(core)
    assert pods and all(pod_is_ready(p) for p in pods), [p.metadata.name for p in pods]
    container = pods[0].spec.containers[0]
    named = [e for e in container.env if e.name == OVERRIDE["name"]]
    assert [(e.value, e.value_from) for e in named] == [(OVERRIDE["value"], None)], named
    tmp = [v for v in pods[0].spec.volumes if v.name == "tmp"]
    assert len(tmp) == 1 and tmp[0].empty_dir.size_limit == "32Mi", tmp
    FIRST["hash"] = template_hash(apps)


def test_monitors_are_selected_as_a_stock_kube_prometheus_stack_selects(custom: Any, namespace: str) -> None:
    for plural in ("servicemonitors", "prometheusrules"):
        found = custom.list_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, plural, label_selector=STOCK_SELECTOR
        )["items"]
        names = [item["metadata"]["name"] for item in found]
        assert len(names) == 1 and names[0].startswith(RELEASE), f"{plural} selected by {STOCK_SELECTOR}: {names}"
        if plural == "prometheusrules":
            # Each release's rules judge its own targets: the job the ServiceMonitor gives them, in this namespace.
            scope = f'namespace="{namespace}",job="{RELEASE}-flask-svc-metrics"'
            exprs = [str(rule["expr"]) for group in found[0]["spec"]["groups"] for rule in group["rules"]]
            assert exprs and all(scope in expr for expr in exprs), [e for e in exprs if scope not in e][:3]


def test_dashboard_configmap_is_installed(core: Any, namespace: str) -> None:
    maps = core.list_config_map_for_all_namespaces(label_selector=INSTANCE).items
    dashboards = [m for m in maps if any(key.endswith(".json") for key in (m.data or {}))]
    assert len(dashboards) == 1, [m.metadata.name for m in maps]
    (document,) = [json.loads(v) for k, v in dashboards[0].data.items() if k.endswith(".json")]
    assert document["panels"] and document["uid"], "the dashboard has no panels or no uid"


def test_network_policies_are_accepted(kube_api: Any, namespace: str) -> None:
    from kubernetes import client

    policies = client.NetworkingV1Api(kube_api).list_namespaced_network_policy(namespace, label_selector=INSTANCE)
    names = [p.metadata.name for p in policies.items]
    assert names, "no NetworkPolicy of the release in the cluster"


def test_keda_scaled_object_is_accepted_by_the_api_server(helm4: str, namespace: str) -> None:
    rendered = run_tool(
        [helm4, "template", RELEASE, CHART, "--namespace", namespace, "-f", "charts/flask-svc/ci/keda-values.yaml",
         *image_values(), "--api-versions", "keda.sh/v1alpha1", "--show-only", "templates/scaledobject.yaml"]
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: ScaledObject" in rendered.stdout
    path = f"/tmp/{RELEASE}-scaledobject.yaml"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(rendered.stdout)
    applied = run_tool(["kubectl", "apply", "--dry-run=server", "-f", path, "--namespace", namespace])
    assert applied.returncode == 0, f"the API server refused the ScaledObject:\n{applied.stderr}"


@pytest.mark.timeout(420)
def test_upgrade_with_a_changed_value_rolls_the_pods(helm4: str, namespace: str, apps: Any, core: Any) -> None:
    before = {p.metadata.name for p in release_pods(core)}
    helm4_run(
        helm4, "upgrade", RELEASE, CHART, "--namespace", namespace, "--reuse-values",
        "--set", "config.logLevel=debug", "--wait", "--timeout", "5m",
    )  # fmt: skip
    wait_until(
        lambda: (not before & {p.metadata.name for p in release_pods(core)}, "old pods still listed"),
        timeout=180,
        what="the old pods to go",
    )
    assert template_hash(apps) != FIRST["hash"], "the upgrade did not change the pod template"


@pytest.mark.timeout(420)
def test_rollback_restores_the_first_revision(helm4: str, namespace: str, apps: Any, core: Any) -> None:
    helm4_run(helm4, "rollback", RELEASE, "1", "--namespace", namespace, "--wait", "--timeout", "5m")
    wait_until(
        lambda: (serving_hash(apps)[0] == FIRST["hash"], f"serving: {serving_hash(apps)[1]}"),
        timeout=180,
        what="the first revision's pods",
    )
    config = core.list_namespaced_config_map(namespace, label_selector=INSTANCE).items
    levels = {m.data.get("LOG_LEVEL") for m in config if m.data and "LOG_LEVEL" in m.data}
    assert levels == {"info"}, levels


@pytest.mark.timeout(300)
def test_uninstall_leaves_nothing_of_the_release(helm4: str, namespace: str, kube_api: Any, custom: Any) -> None:
    from kubernetes import client

    helm4_run(helm4, "uninstall", RELEASE, "--namespace", namespace, "--wait", "--timeout", "3m")
    core = client.CoreV1Api(kube_api)
    apps = client.AppsV1Api(kube_api)
    listers = {
        "deployments": lambda: apps.list_namespaced_deployment(namespace, label_selector=INSTANCE).items,
        "replicasets": lambda: apps.list_namespaced_replica_set(namespace, label_selector=INSTANCE).items,
        "pods": lambda: core.list_namespaced_pod(namespace, label_selector=INSTANCE).items,
        "services": lambda: core.list_namespaced_service(namespace, label_selector=INSTANCE).items,
        "configmaps": lambda: core.list_config_map_for_all_namespaces(label_selector=INSTANCE).items,
        "serviceaccounts": lambda: core.list_namespaced_service_account(namespace, label_selector=INSTANCE).items,
        "helm release secrets": lambda: core.list_namespaced_secret(namespace, label_selector=f"name={RELEASE}").items,
        "hpa": lambda: (
            client.AutoscalingV2Api(kube_api)
            .list_namespaced_horizontal_pod_autoscaler(namespace, label_selector=INSTANCE)
            .items
        ),
        "pdb": lambda: (
            client.PolicyV1Api(kube_api).list_namespaced_pod_disruption_budget(namespace, label_selector=INSTANCE).items
        ),
        "networkpolicies": lambda: (
            client.NetworkingV1Api(kube_api).list_namespaced_network_policy(namespace, label_selector=INSTANCE).items
        ),
        "servicemonitors": lambda: custom.list_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, "servicemonitors", label_selector=INSTANCE
        )["items"],
        "prometheusrules": lambda: custom.list_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, "prometheusrules", label_selector=INSTANCE
        )["items"],
    }

    def leftovers() -> tuple[bool, str]:
        left = {kind: len(items()) for kind, items in listers.items()}
        left = {kind: n for kind, n in left.items() if n}
        return not left, f"still there: {left}"

    wait_until(leftovers, timeout=180, what="every object of the release to go")
