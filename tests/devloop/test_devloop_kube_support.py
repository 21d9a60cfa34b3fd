"""The pure logic of tests/e2e/kube_support.py, on kubernetes client model objects (no cluster)."""

from __future__ import annotations

import pytest
from kubernetes.client import (
    V1Container,
    V1ContainerPort,
    V1Deployment,
    V1DeploymentCondition,
    V1DeploymentSpec,
    V1DeploymentStatus,
    V1EndpointAddress,
    V1Endpoints,
    V1EndpointSubset,
    V1Job,
    V1JobStatus,
    V1LabelSelector,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodList,
    V1PodStatus,
    V1PodTemplateSpec,
    V1Service,
    V1ServicePort,
    V1ServiceSpec,
    V2CrossVersionObjectReference,
    V2HorizontalPodAutoscaler,
    V2HorizontalPodAutoscalerSpec,
    V2MetricSpec,
    V2MetricTarget,
    V2ResourceMetricSource,
)

from tests.e2e.kube_support import (
    LOADGEN_SOURCE,
    Settings,
    await_load_job,
    container_port_number,
    delete_job,
    env_flag,
    hpa_cpu_target,
    job_finished,
    load_job_manifest,
    own_namespace,
    own_release,
    parse_load_summary,
    pick_service,
    pod_is_ready,
    rollout_state,
    selector_string,
    wait_for_service_endpoints,
    wait_until,
)


def deployment(generation: int = 2, observed: int = 2, want: int = 2, **status: object) -> V1Deployment:
    return V1Deployment(
        metadata=V1ObjectMeta(name="flask-svc", generation=generation),
        spec=V1DeploymentSpec(
            replicas=want,
            selector=V1LabelSelector(match_labels={"app": "x"}),
            template=V1PodTemplateSpec(),
        ),
        status=V1DeploymentStatus(observed_generation=observed, **status),
    )


@pytest.mark.parametrize(
    ("dep", "done", "fragment"),
    [
        (deployment(generation=3, observed=2), False, "observe generation 3"),
        (deployment(updated_replicas=1, replicas=2, available_replicas=2), False, "1 of 2 replicas updated"),
        (deployment(updated_replicas=2, replicas=3, available_replicas=2), False, "1 old replicas pending"),
        (deployment(updated_replicas=2, replicas=2, available_replicas=1), False, "1 of 2 updated replicas available"),
        (deployment(updated_replicas=2, replicas=2, available_replicas=2), True, "rolled out"),
        (deployment(want=0), True, "rolled out"),  # scaled to zero is a finished rollout
    ],
)
def test_rollout_state_reads_status_like_kubectl(dep: V1Deployment, done: bool, fragment: str) -> None:
    state = rollout_state(dep)
    assert (state.done, state.failed) == (done, False)
    assert fragment in state.message


def test_rollout_state_reports_a_stuck_rollout() -> None:
    stuck = V1DeploymentCondition(
        type="Progressing", status="False", reason="ProgressDeadlineExceeded", message="ReplicaSet x has timed out"
    )
    state = rollout_state(deployment(updated_replicas=1, conditions=[stuck]))
    assert state.failed and not state.done
    assert "timed out" in state.message


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_until_returns_the_message_once_done() -> None:
    t = FakeTime()
    answers = iter([(False, "1 of 2"), (False, "1 of 2"), (True, "2 of 2")])
    assert wait_until(lambda: next(answers), timeout=60, interval=5, clock=t.clock, sleep=t.sleep) == "2 of 2"
    assert t.sleeps == [5, 5]


def test_wait_until_times_out_with_the_last_observation() -> None:
    t = FakeTime()
    with pytest.raises(TimeoutError, match=r"timed out after 12s waiting for rollout: still 1 of 2"):
        wait_until(
            lambda: (False, "still 1 of 2"), timeout=12, interval=5, what="rollout", clock=t.clock, sleep=t.sleep
        )
    assert t.sleeps == [5, 5, 2]  # never sleeps past the deadline


def pod(phase: str = "Running", ready: str = "True", deleting: bool = False) -> V1Pod:
    meta = V1ObjectMeta(name="p", deletion_timestamp="2026-01-01T00:00:00Z" if deleting else None)
    conditions = [V1PodCondition(type="Ready", status=ready)]
    return V1Pod(metadata=meta, status=V1PodStatus(phase=phase, conditions=conditions))


def test_pod_is_ready() -> None:
    assert pod_is_ready(pod())
    assert not pod_is_ready(pod(ready="False"))
    assert not pod_is_ready(pod(phase="Pending"))
    assert not pod_is_ready(pod(deleting=True))


def test_container_port_number_resolves_names() -> None:
    c = V1Container(name="app", ports=[V1ContainerPort(name="http", container_port=8080)])
    assert container_port_number(c, "http") == 8080
    assert container_port_number(c, 9797) == 9797
    assert container_port_number(c, "8080") == 8080
    assert container_port_number(c, "metrics") is None


def service(name: str, *ports: int, headless: bool = False) -> V1Service:
    spec = V1ServiceSpec(cluster_ip="None" if headless else "10.0.0.1", ports=[V1ServicePort(port=p) for p in ports])
    return V1Service(metadata=V1ObjectMeta(name=name), spec=spec)


def test_pick_service_takes_the_one_with_the_port() -> None:
    found = [
        service("flask-svc-metrics", 9797),
        service("flask-svc", 8080),
        service("flask-svc-hl", 8080, headless=True),
    ]
    assert pick_service(found, 8080) == "flask-svc"
    with pytest.raises(LookupError, match="found none"):
        pick_service(found, 1234)
    with pytest.raises(LookupError, match="exactly one"):
        pick_service([service("a", 8080), service("b", 8080)], 8080)


def test_hpa_cpu_target() -> None:
    cpu = V2MetricSpec(
        type="Resource",
        resource=V2ResourceMetricSource(name="cpu", target=V2MetricTarget(type="Utilization", average_utilization=70)),
    )
    memory = V2MetricSpec(
        type="Resource",
        resource=V2ResourceMetricSource(
            name="memory", target=V2MetricTarget(type="Utilization", average_utilization=80)
        ),
    )
    ref = V2CrossVersionObjectReference(api_version="apps/v1", kind="Deployment", name="flask-svc")
    hpa = V2HorizontalPodAutoscaler(spec=V2HorizontalPodAutoscalerSpec(max_replicas=4, scale_target_ref=ref))
    assert hpa_cpu_target(hpa) is None
    hpa.spec.metrics = [memory, cpu]
    assert hpa_cpu_target(hpa) == 70


def test_load_job_is_bounded_restricted_and_carries_loadgen() -> None:
    job = load_job_manifest(
        name="load",
        namespace="ns",
        image="flask-svc:e2e",
        url="http://flask-svc.ns.svc:8080/api/v1/analyze",
        method="POST",
        body="some words",
        seconds=90,
        concurrency=4,
    )
    spec = job["spec"]
    pod_spec = spec["template"]["spec"]
    (container,) = pod_spec["containers"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] > 90
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["command"] == ["python", "-c", LOADGEN_SOURCE]
    args = container["args"]
    for flag, value in [("--seconds", "90"), ("--method", "POST"), ("--body", "some words"), ("--requests", "200000")]:
        assert args[args.index(flag) + 1] == value
    assert "def run_load(" in LOADGEN_SOURCE


def test_parse_load_summary_takes_the_last_line() -> None:
    summary = '{"sent": 10, "ok": 9, "failed": 1, "statuses": {"200": 9}, "errors": {"X": 1}, "elapsed": 2}'
    logs = f"warming up\n{summary}\n\n"
    result = parse_load_summary(logs)
    assert (result.sent, result.ok, result.failed) == (10, 9, 1)
    with pytest.raises(ValueError, match="printed nothing"):
        parse_load_summary("\n \n")


def test_job_finished() -> None:
    assert job_finished(V1Job(status=V1JobStatus(succeeded=1))) == (True, "succeeded")
    assert job_finished(V1Job(status=V1JobStatus(failed=1))) == (True, "failed")
    assert job_finished(V1Job(status=V1JobStatus(active=1))) == (False, "active=1")


def test_settings_and_flags_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_SVC_E2E_NAMESPACE", "e2e")
    monkeypatch.setenv("FLASK_SVC_E2E_LOAD_SECONDS", "90")
    settings = Settings.from_env()
    assert (settings.namespace, settings.release, settings.load_seconds) == ("e2e", "flask-svc", 90.0)
    assert env_flag("X", {"X": "True"}) and env_flag("X", {"X": "1"})
    assert not env_flag("X", {"X": "false"}) and not env_flag("X", {})
    assert selector_string({"b": "2", "a": "1"}) == "a=1,b=2"


class FakeBatch:
    """read_namespaced_job answers the given statuses in turn, then 404s once deleted."""

    def __init__(self, *statuses: V1JobStatus) -> None:
        self.statuses = list(statuses)
        self.deleted = False

    def read_namespaced_job(self, name: str, namespace: str) -> V1Job:
        from kubernetes.client.exceptions import ApiException

        if self.deleted:
            raise ApiException(status=404)
        return V1Job(status=self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0])

    def delete_namespaced_job(self, name: str, namespace: str, propagation_policy: str) -> None:
        from kubernetes.client.exceptions import ApiException

        if self.deleted:
            raise ApiException(status=404)
        self.deleted = True


class FakeCore:
    def __init__(self, logs: str) -> None:
        self.logs = logs
        self.selectors: list[str] = []

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> V1PodList:
        self.selectors.append(label_selector)
        return V1PodList(items=[V1Pod(metadata=V1ObjectMeta(name="load-abcde"))])

    def read_namespaced_pod_log(self, name: str, namespace: str) -> str:
        return self.logs


SUMMARY = '{"sent": 5, "ok": 5, "failed": 0, "statuses": {"200": 5}, "errors": {}, "elapsed": 1}'


def test_await_load_job_returns_the_pods_summary() -> None:
    batch = FakeBatch(V1JobStatus(active=1), V1JobStatus(active=1), V1JobStatus(succeeded=1))
    core = FakeCore(f"starting\n{SUMMARY}\n")
    result = await_load_job(batch, core, "ns", "load", timeout=60, interval=0)
    assert (result.sent, result.ok) == (5, 5)
    assert core.selectors == ["job-name=load"]


def test_await_load_job_fails_with_the_logs_of_a_failed_job() -> None:
    with pytest.raises(AssertionError, match="load job load failed; its logs:\nTraceback"):
        await_load_job(
            FakeBatch(V1JobStatus(failed=1)), FakeCore("Traceback ..."), "ns", "load", timeout=60, interval=0
        )


def test_delete_job_tolerates_a_missing_job_and_waits_for_deletion() -> None:
    batch = FakeBatch(V1JobStatus(active=1))
    delete_job(batch, "ns", "load")
    assert batch.deleted
    delete_job(batch, "ns", "load")  # already gone: a no-op


class FakeEndpoints:
    """read_namespaced_endpoints answers the given Endpoints in turn, the last one from then on."""

    def __init__(self, *answers: V1Endpoints) -> None:
        self.answers = list(answers)

    def read_namespaced_endpoints(self, name: str, namespace: str) -> V1Endpoints:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_wait_for_service_endpoints_returns_once_one_is_ready_and_names_what_it_saw_otherwise() -> None:
    blinking = V1EndpointSubset(not_ready_addresses=[V1EndpointAddress(ip="10.0.0.7")])
    ready = V1EndpointSubset(addresses=[V1EndpointAddress(ip="10.0.0.7")])
    found = wait_for_service_endpoints(FakeEndpoints(V1Endpoints(subsets=[ready])), "ns", "svc")
    assert found == "ready addresses ['10.0.0.7'], not ready []"
    with pytest.raises(TimeoutError, match=r"service/svc in ns: ready addresses \[\], not ready \['10.0.0.7'\]"):
        wait_for_service_endpoints(FakeEndpoints(V1Endpoints(subsets=[blinking])), "ns", "svc", timeout=0)


def test_modules_with_a_release_of_their_own_are_named_after_the_suites_namespace() -> None:
    default: dict[str, str] = {}
    assert (own_namespace("batch", default), own_release("bounds", default)) == ("flask-svc-batch", "bounds")
    mine = {"FLASK_SVC_E2E_NAMESPACE": "fs-ci"}
    assert (own_namespace("batch", mine), own_release("bounds", mine)) == ("fs-ci-batch", "bounds-fs-ci")
    # The chart's full name stays "<release>-flask-svc", as the tests spell it.
    assert "flask-svc" not in own_release("bounds", {"FLASK_SVC_E2E_NAMESPACE": "flask-svc-2"})
