"""The chart's part in batch access: the mode reaches the service; in `kubernetes` mode the service may make
TokenReviews and SubjectAccessReviews (system:auth-delegator, its ServiceAccount alone) and example ClusterRoles
grant the virtual resource; in `token` mode the tokens come from an existing Secret, and nothing cluster-scoped."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.conftest import NAMESPACE, RELEASE, Helm, by_kind, one
from tests.chart.test_manifests import container, env_of

ON = ("--set", "batch.enabled=true")
GROUP = "flask-svc.dev"


@pytest.fixture(scope="module")
def kube_mode(chart: Helm) -> list[dict[str, Any]]:
    return chart.render(*ON)


def test_nothing_of_it_without_batch(chart: Helm) -> None:
    docs = chart.scenario("default")
    assert by_kind(docs, "ClusterRole") == [] and by_kind(docs, "ClusterRoleBinding") == []
    assert "FLASK_SVC_BATCH_AUTH" not in env_of(docs)


def test_kubernetes_is_the_default_and_the_service_alone_may_review(kube_mode: list[dict[str, Any]]) -> None:
    assert env_of(kube_mode)["FLASK_SVC_BATCH_AUTH"] == "kubernetes"
    assert "FLASK_SVC_BATCH_AUTH_TOKENS_FILE" not in env_of(kube_mode)
    (binding,) = by_kind(kube_mode, "ClusterRoleBinding")
    assert binding["metadata"]["name"] == f"{NAMESPACE}-{RELEASE}-batch-auth-delegator"  # cluster-scoped: unique
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:auth-delegator",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]


def test_the_example_roles_grant_the_virtual_resource_only(kube_mode: list[dict[str, Any]]) -> None:
    roles = {role["metadata"]["name"]: role for role in by_kind(kube_mode, "ClusterRole")}
    assert set(roles) == {f"{RELEASE}-batch-viewer", f"{RELEASE}-batch-editor", f"{RELEASE}-batch-admin"}

    def grants(name: str) -> set[tuple[str, str]]:
        rules = roles[f"{RELEASE}-batch-{name}"]["rules"]
        assert all(rule["apiGroups"] == [GROUP] for rule in rules)
        return {(resource, verb) for rule in rules for resource in rule["resources"] for verb in rule["verbs"]}

    own = {("analysisjobs", verb) for verb in ("create", "get", "list", "delete")}
    assert grants("viewer") == {("analysisjobs", "get"), ("analysisjobs", "list")}
    assert grants("editor") == own
    assert grants("admin") == own | {("analysisjobs/all", verb) for verb in ("get", "list", "delete")}
    assert not any(
        k.startswith("rbac.authorization.k8s.io/aggregate-to") for r in roles.values() for k in r["metadata"]["labels"]
    )


def test_roles_can_be_aggregated_or_left_out(chart: Helm) -> None:
    aggregated = chart.render(*ON, "--set", "batch.auth.roles.aggregate=true")
    labels = {r["metadata"]["name"]: r["metadata"]["labels"] for r in by_kind(aggregated, "ClusterRole")}
    for role, into in (("viewer", "view"), ("editor", "edit"), ("admin", "admin")):
        assert labels[f"{RELEASE}-batch-{role}"][f"rbac.authorization.k8s.io/aggregate-to-{into}"] == "true"
    assert by_kind(chart.render(*ON, "--set", "batch.auth.roles.create=false"), "ClusterRole") == []


def test_token_mode_mounts_the_secret_and_binds_nothing(chart: Helm) -> None:
    docs = chart.render(*ON, "--set", "batch.auth.mode=token", "--set", "batch.auth.tokens.existingSecret=tokens")
    assert by_kind(docs, "ClusterRole") == [] and by_kind(docs, "ClusterRoleBinding") == []
    env = env_of(docs)
    assert env["FLASK_SVC_BATCH_AUTH"] == "token"
    assert env["FLASK_SVC_BATCH_AUTH_TOKENS_FILE"] == "/etc/flask-svc/batch-auth/tokens"
    deployment = one(docs, "Deployment", RELEASE)
    assert {"name": "batch-auth", "mountPath": "/etc/flask-svc/batch-auth", "readOnly": True} in container(deployment)[
        "volumeMounts"
    ]
    volume = {"secretName": "tokens", "defaultMode": 0o440, "items": [{"key": "tokens", "path": "tokens"}]}
    assert {"name": "batch-auth", "secret": volume} in deployment["spec"]["template"]["spec"]["volumes"]


def test_none_mode_is_explicit_and_binds_nothing(chart: Helm) -> None:
    docs = chart.render(*ON, "--set", "batch.auth.mode=none")
    assert env_of(docs)["FLASK_SVC_BATCH_AUTH"] == "none"
    assert by_kind(docs, "ClusterRoleBinding") == []


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--set", "batch.auth.mode=token"), "batch.auth.tokens.existingSecret"),
        (("--set", "batch.auth.mode=anyone"), "batch.auth.mode"),
        (("--set", "batch.auth.tokens.existingSecret=Not_A_Name"), "batch.auth.tokens.existingSecret"),
        (("--set", "batch.auth.roles.create=yes"), "batch.auth.roles.create"),
    ],
)
def test_bad_values_fail_naming_the_key(chart: Helm, flags: tuple[str, ...], named: str) -> None:
    result = chart.template(*ON, *flags)
    assert result.returncode != 0 and named in result.stderr, result.stderr
