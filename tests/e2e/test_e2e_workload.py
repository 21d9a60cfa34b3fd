"""The release as it runs: rollout, readiness, probes and the security context on the live objects."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.kube_support import APP_PORT, container_port_number, pod_is_ready, rollout_state

pytestmark = pytest.mark.e2e


def test_rollout_is_complete(deployment: Any) -> None:
    state = rollout_state(deployment)
    assert state.done, state.message


def test_every_pod_is_ready_without_restarts(deployment: Any, pods: list[Any]) -> None:
    assert pods, "the Deployment has no pods"
    not_ready = [p.metadata.name for p in pods if not pod_is_ready(p)]
    assert not not_ready, f"pods not Ready: {not_ready}"
    assert len(pods) == deployment.status.ready_replicas
    restarts = {f"{p.metadata.name}/{c.name}": c.restart_count for p in pods for c in p.status.container_statuses or []}
    assert all(n == 0 for n in restarts.values()), f"containers restarted (probe or crash trouble): {restarts}"


@pytest.mark.parametrize(
    ("probe", "paths"),
    [
        ("liveness_probe", {"/livez", "/healthz"}),
        ("readiness_probe", {"/readyz"}),
        ("startup_probe", {"/startupz"}),
    ],
)
def test_probes_hit_the_health_endpoints(app_container: Any, probe: str, paths: set[str]) -> None:
    spec = getattr(app_container, probe)
    assert spec is not None, f"{probe} is not set"
    assert spec.http_get is not None, f"{probe} is not an HTTP probe"
    assert spec.http_get.path in paths
    assert container_port_number(app_container, spec.http_get.port) == APP_PORT


def test_security_context_is_restricted(deployment: Any, app_container: Any) -> None:
    pod_sc = deployment.spec.template.spec.security_context
    sc = app_container.security_context
    assert sc is not None, "the app container has no securityContext"
    run_as_non_root = sc.run_as_non_root if sc.run_as_non_root is not None else pod_sc and pod_sc.run_as_non_root
    assert run_as_non_root is True
    uid = sc.run_as_user if sc.run_as_user is not None else pod_sc and pod_sc.run_as_user
    assert uid not in (None, 0), f"runAsUser is {uid}"
    assert sc.read_only_root_filesystem is True
    assert sc.allow_privilege_escalation is False
    assert sc.capabilities is not None and "ALL" in (sc.capabilities.drop or [])
    seccomp = sc.seccomp_profile or (pod_sc and pod_sc.seccomp_profile)
    assert seccomp is not None and seccomp.type == "RuntimeDefault"


def test_the_live_process_is_non_root_on_a_read_only_root(core: Any, ready_pod: Any, app_container: Any) -> None:
    from kubernetes.stream import stream

    probe = (
        "import os\n"
        "print('uid', os.getuid())\n"
        "try:\n"
        "    open('/flask-svc-e2e-write-test', 'w')\n"
        "    print('root-writable')\n"
        "except OSError as exc:\n"
        "    print('root-read-only', exc.errno)\n"
    )
    out = stream(
        core.connect_get_namespaced_pod_exec,
        ready_pod.metadata.name,
        ready_pod.metadata.namespace,
        container=app_container.name,
        command=["python", "-c", probe],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert "uid 0" not in out, out
    assert "uid " in out and "root-read-only" in out, out
