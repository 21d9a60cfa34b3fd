"""The chart's batch analysis resources: nothing of them by default; when on, exactly the access the runner needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.batch.stages import PERMANENT_EXIT_CODES
from tests.chart.conftest import CHART, KUBE_NEWEST, NAMESPACE, RELEASE, Helm, by_kind, one, strict_load_all
from tests.chart.test_manifests import SELECTOR, container, env_of

BATCH_NAME = f"{RELEASE}-batch"
STAGE_SELECTOR = {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "batch-stage"}


@pytest.fixture(scope="module")
def batch(chart: Helm) -> list[dict[str, Any]]:
    return chart.scenario("batch")


def _template(docs: list[dict[str, Any]]) -> dict[str, Any]:
    job: dict[str, Any] = json.loads(env_of(docs)["FLASK_SVC_BATCH_JOB_TEMPLATE"])
    return job


def test_off_by_default_no_token_no_rbac_no_volume(chart: Helm) -> None:
    docs = chart.scenario("default")
    deployment = one(docs, "Deployment", RELEASE)
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    for kind in ("Role", "RoleBinding", "PersistentVolumeClaim", "Secret"):
        assert by_kind(docs, kind) == [], kind
    env = env_of(docs)
    assert env["FLASK_SVC_BATCH_RUNNER"] == "off"
    assert not any(name.startswith("FLASK_SVC_BATCH_") and name != "FLASK_SVC_BATCH_RUNNER" for name in env)
    assert all(m["mountPath"] != "/data" for m in container(deployment)["volumeMounts"])


def test_the_role_grants_jobs_in_the_namespace_and_nothing_else(batch: list[dict[str, Any]]) -> None:
    role = one(batch, "Role", BATCH_NAME)
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [f"{RELEASE}-batch-reconciler"],
            "verbs": ["get", "update"],
        },
    ]
    # Cluster-scoped: only the access checks' (tests/chart/test_batch_access.py), none for the runner.
    assert [b["roleRef"]["name"] for b in by_kind(batch, "ClusterRoleBinding")] == ["system:auth-delegator"]
    binding = one(batch, "RoleBinding", BATCH_NAME)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": BATCH_NAME}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]


def test_the_service_gets_its_token_the_volume_and_the_callback_key(batch: list[dict[str, Any]]) -> None:
    deployment = one(batch, "Deployment", RELEASE)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert {"name": "batch-data", "persistentVolumeClaim": {"claimName": BATCH_NAME}} in pod["volumes"]
    assert {"name": "batch-data", "mountPath": "/data"} in container(deployment)["volumeMounts"]
    env = env_of(batch)
    assert env["FLASK_SVC_BATCH_RUNNER"] == "kubernetes"
    assert env["FLASK_SVC_BATCH_DATA_DIR"] == "/data/jobs"  # private: the service makes it on the volume
    assert env["FLASK_SVC_BATCH_CALLBACK_URL"] == f"http://{RELEASE}.{NAMESPACE}.svc:8080"
    assert env["FLASK_SVC_BATCH_CALLBACK_KEY_FILE"] == "/etc/flask-svc/batch/callback-key"
    assert {"name": "batch-key", "mountPath": "/etc/flask-svc/batch", "readOnly": True} in container(deployment)[
        "volumeMounts"
    ]
    assert {"name": "batch-key", "secret": {"secretName": BATCH_NAME, "defaultMode": 0o440}} in pod["volumes"]
    assert len(one(batch, "Secret", BATCH_NAME)["data"]["callback-key"]) >= 48


def test_the_claim_follows_the_persistence_values(chart: Helm, batch: list[dict[str, Any]]) -> None:
    claim = one(batch, "PersistentVolumeClaim", BATCH_NAME)
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "nfs",
        "resources": {"requests": {"storage": "20Gi"}},
    }
    default_class = chart.render("--set", "batch.enabled=true")
    assert "storageClassName" not in one(default_class, "PersistentVolumeClaim")["spec"]  # null: the cluster's default
    static = chart.render("--set", "batch.enabled=true", "--set", "batch.persistence.storageClass=")
    assert one(static, "PersistentVolumeClaim")["spec"]["storageClassName"] == ""  # "": bind a static volume
    existing = chart.render("--set", "batch.enabled=true", "--set", "batch.persistence.existingClaim=shared")
    assert by_kind(existing, "PersistentVolumeClaim") == []
    template = _template(existing)["spec"]["template"]["spec"]
    assert template["volumes"][0] == {"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}


def test_stage_jobs_are_restricted_bounded_and_never_selected_by_the_service(batch: list[dict[str, Any]]) -> None:
    deployment = one(batch, "Deployment", RELEASE)
    job = _template(batch)
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (2, 1800, 3600)
    exit_codes = spec["podFailurePolicy"]["rules"][0]
    assert exit_codes["action"] == "FailJob" and exit_codes["onExitCodes"]["values"] == [
        int(code) for code in PERMANENT_EXIT_CODES
    ]
    pod = spec["template"]["spec"]
    stage = pod["containers"][0]
    assert stage["image"] == container(deployment)["image"]
    assert stage["command"] == ["python", "-m", "service.batch"]
    assert stage["securityContext"] == container(deployment)["securityContext"]
    assert pod["securityContext"] == deployment["spec"]["template"]["spec"]["securityContext"]
    assert stage["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    labels = spec["template"]["metadata"]["labels"]
    assert STAGE_SELECTOR.items() <= labels.items()
    assert not SELECTOR.items() <= labels.items(), "stage pods would join the Service and the PDB"
    # Job names are <prefix>-<21-character id>-tokenize: they must stay within 63 characters.
    assert len(job["metadata"]["name"]) + 1 + 21 + len("-tokenize") <= 63


def test_network_policies_let_stages_call_back_and_the_service_reach_the_api(batch: list[dict[str, Any]]) -> None:
    app = one(batch, "NetworkPolicy", RELEASE)
    app_port_peers = app["spec"]["ingress"][0].get("from")
    assert app_port_peers is None or {"podSelector": {"matchLabels": STAGE_SELECTOR}} in app_port_peers
    private = [{"ipBlock": {"cidr": cidr}} for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
    api = {"to": private, "ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}
    assert api in app["spec"]["egress"]
    stage = one(batch, "NetworkPolicy", f"{RELEASE}-batch-stage")
    assert stage["spec"]["podSelector"] == {"matchLabels": STAGE_SELECTOR}
    assert stage["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in stage["spec"]
    assert stage["spec"]["egress"][-1] == {
        "to": [{"podSelector": {"matchLabels": SELECTOR}}],
        "ports": [{"port": 8080, "protocol": "TCP"}],
    }


def test_restricted_peers_still_admit_the_stage_pods(chart: Helm) -> None:
    docs = chart.render("--set", "batch.enabled=true", "--set", "networkPolicy.allowExternal=false")
    peers = one(docs, "NetworkPolicy", RELEASE)["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": STAGE_SELECTOR}} in peers


def test_an_existing_callback_key_secret_is_used_and_renders_are_reproducible(chart: Helm) -> None:
    # GitOps tools render with `helm template`, where `lookup` finds nothing: without existingSecret every render
    # makes a new key (the Secret changes on every sync and in-flight callbacks fail their signature).
    def render(*flags: str) -> list[dict[str, Any]]:  # not chart.render: that one is cached
        args = ("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_NEWEST)
        result = chart.run(*args, "--set", "batch.enabled=true", *flags)
        assert result.returncode == 0, result.stderr
        return strict_load_all(result.stdout)

    assert one(render(), "Secret", BATCH_NAME) != one(render(), "Secret", BATCH_NAME)
    mine = ("--set", "batch.callbackKey.existingSecret=my-batch-key", "--set", "batch.callbackKey.secretKey=k")
    docs = render(*mine)
    assert docs == render(*mine)  # the same manifests every time
    assert by_kind(docs, "Secret") == []
    pod = one(docs, "Deployment", RELEASE)["spec"]["template"]["spec"]
    key_volume = {
        "name": "batch-key",
        "secret": {"secretName": "my-batch-key", "defaultMode": 0o440, "items": [{"key": "k", "path": "callback-key"}]},
    }
    assert key_volume in pod["volumes"]
    assert env_of(docs)["FLASK_SVC_BATCH_CALLBACK_KEY_FILE"] == "/etc/flask-svc/batch/callback-key"
