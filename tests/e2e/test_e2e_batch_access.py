"""Who may use the batch API on the live cluster, decided by the cluster: the chart's defaults with
`batch.enabled=true` (so `batch.auth.mode=kubernetes`), ServiceAccounts as users, tokens from `kubectl create token`.

alice and bob are bound to the chart's editor ClusterRole, carol to its admin one, eve to nothing. alice's job is
invisible to bob (list, get, result, delete), visible to carol; eve is 403; no token 401; a forged token 401. A
release of its own in a namespace of its own (`<e2e namespace>-access`), on a static hostPath volume as in
test_e2e_batch.py, one replica: what is tested is the API server's answers, not scale.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.kube_support import (
    Settings,
    batch_release,
    own_release,
    pod_is_ready,
    pod_port_relay,
    run_tool,
)

pytestmark = pytest.mark.e2e

RELEASE = own_release("access")
CLAIM = f"{RELEASE}-flask-svc-batch"
TEXT = b"the cat and the hat sat on the mat " * 1000


@pytest.fixture(scope="module")
def namespace(settings: Settings) -> str:
    return f"{settings.namespace}-access"


@pytest.fixture(scope="module")
def release(core: Any, namespace: str) -> Iterator[str]:
    volume, host_dir = f"{namespace}-batch", Path(f"/var/tmp/{namespace}-batch")  # cluster-scoped: named per run
    with batch_release(
        core, namespace=namespace, release=RELEASE, claim=CLAIM, volume=volume, host_dir=host_dir, size="1Gi",
        values=["--set", "replicaCount=1"],
    ):  # fmt: skip
        yield namespace


@pytest.fixture(scope="module")
def tokens(release: str, core: Any) -> dict[str, str]:
    """A token per user: alice and bob edit, carol administers, eve has nothing."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api()
    roles = {"alice": "editor", "bob": "editor", "carol": "admin", "eve": None}
    found: dict[str, str] = {}
    for user, role in roles.items():
        core.create_namespaced_service_account(
            release, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=user))
        )
        if role:
            rbac.create_namespaced_role_binding(
                release,
                client.V1RoleBinding(
                    metadata=client.V1ObjectMeta(name=f"{user}-batch"),
                    role_ref=client.V1RoleRef(
                        api_group="rbac.authorization.k8s.io",
                        kind="ClusterRole",
                        name=f"{RELEASE}-flask-svc-batch-{role}",
                    ),
                    subjects=[client.RbacV1Subject(kind="ServiceAccount", name=user, namespace=release)],
                ),
            )
        made = run_tool(["kubectl", "create", "token", user, "-n", release, "--duration", "1h"])
        assert made.returncode == 0, made.stderr
        found[user] = made.stdout.strip()
    return found


@pytest.fixture(scope="module")
def url(release: str, core: Any) -> Iterator[str]:
    pods = core.list_namespaced_pod(release, label_selector=f"app.kubernetes.io/instance={RELEASE}").items
    ready = [
        pod.metadata.name
        for pod in pods
        if pod_is_ready(pod) and "helm.sh/hook" not in (pod.metadata.annotations or {})
    ]
    assert ready, "no ready pod"
    relay = pod_port_relay(release, ready[0], 8080).start()
    yield f"{relay.url}/api/v1/jobs"
    relay.stop()


def _as(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


def _post(url: str, token: str | None) -> requests.Response:
    return requests.post(url, data=TEXT, headers={"Content-Type": "text/plain", **_as(token)}, timeout=60)


def _problem(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code, response.text


def test_no_token_and_a_forged_token_are_401(url: str, tokens: dict[str, str]) -> None:
    _problem(_post(url, None), 401, "unauthenticated")
    response = requests.get(url, timeout=30)
    _problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    header, payload, _signature = tokens["alice"].split(".")
    for forged in (
        "not-a-token",
        f"{header}.{payload}.AAAA",
    ):  # alice's claims with a signature the cluster did not make
        _problem(_post(url, forged), 401, "invalid_token")
        _problem(requests.get(url, headers=_as(forged), timeout=30), 401, "invalid_token")


def test_a_user_without_a_role_is_403(url: str, tokens: dict[str, str]) -> None:
    _problem(_post(url, tokens["eve"]), 403, "forbidden")
    _problem(requests.get(url, headers=_as(tokens["eve"]), timeout=30), 403, "forbidden")


def test_alices_job_is_invisible_to_bob_and_visible_to_the_admin(
    url: str, tokens: dict[str, str], release: str
) -> None:
    alice, bob, carol = tokens["alice"], tokens["bob"], tokens["carol"]
    created = _post(url, alice)
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["owner"] == f"system:serviceaccount:{release}:alice"
    mine = f"{url}/{job['id']}"
    # bob: the job is not there for him.
    _problem(requests.get(mine, headers=_as(bob), timeout=30), 404, "job_not_found")
    _problem(requests.get(f"{mine}/result", headers=_as(bob), timeout=30), 404, "job_not_found")
    _problem(requests.delete(mine, headers=_as(bob), timeout=30), 404, "job_not_found")
    assert job["id"] not in [j["id"] for j in requests.get(url, headers=_as(bob), timeout=30).json()["jobs"]]
    _problem(requests.get(f"{url}?owner=*", headers=_as(bob), timeout=30), 403, "forbidden")
    # alice: hers, by id and in her list; the result is there or on its way.
    assert requests.get(mine, headers=_as(alice), timeout=30).json()["owner"] == job["owner"]
    assert [j["id"] for j in requests.get(url, headers=_as(alice), timeout=30).json()["jobs"]] == [job["id"]]
    assert requests.get(f"{mine}/result", headers=_as(alice), timeout=30).status_code in (200, 409)
    # carol holds the admin role: everyone's list, and alice's job.
    everyone = requests.get(f"{url}?owner=*", headers=_as(carol), timeout=30)
    assert everyone.status_code == 200 and job["id"] in [j["id"] for j in everyone.json()["jobs"]]
    assert requests.get(mine, headers=_as(carol), timeout=30).status_code == 200
    # Still alice's after bob's tries: she deletes it.
    assert requests.delete(mine, headers=_as(alice), timeout=60).status_code == 200
    _problem(requests.get(mine, headers=_as(alice), timeout=30), 404, "job_not_found")
