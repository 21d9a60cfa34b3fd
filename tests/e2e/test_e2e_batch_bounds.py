"""Batch bounds on the live cluster: the running-stage cap watched on the Jobs, one reconciler by Lease and its
takeover, retention, the stored-bytes cap, and the admission policy refusing what the service's own token asks for.

A release of its own (3 replicas, a short retention, a small byte cap, a 2-stage cap) in a restricted namespace of
its own, on a static hostPath volume made here (the node is this machine), with API-server egress narrowed to the
API server's own address. The tests run in file order and share the release.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.e2e.kube_support import (
    batch_release,
    own_namespace,
    own_release,
    pod_port_relay,
    ready_pods,
    wait_until,
)

pytestmark = pytest.mark.e2e

NAMESPACE = os.environ.get("FLASK_SVC_E2E_BOUNDS_NAMESPACE", own_namespace("bounds"))
RELEASE = own_release("bounds")
FULLNAME = f"{RELEASE}-flask-svc"
CLAIM = f"{FULLNAME}-batch"
LEASE = f"{FULLNAME}-batch-reconciler"
SERVICE_ACCOUNT = FULLNAME
VOLUME = f"flask-svc-e2e-{NAMESPACE}"  # cluster-scoped: named after the namespace
HOST_DIR = Path(f"/var/tmp/flask-svc-e2e-{NAMESPACE}")
JOBS_DIR = HOST_DIR / "jobs"  # the chart's FLASK_SVC_BATCH_DATA_DIR on the volume, made private by the service
APP_SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=flask-svc"
STAGE_SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=batch-stage"
JOB_LABEL = "flask-svc.dev/batch-job"
MAX_RUNNING = 2
MAX_STORED = 8 * 1024 * 1024
RETENTION = 25
TERMINAL = ("succeeded", "failed", "cancelled")
CHART_VALUES = yaml.safe_load(Path("charts/flask-svc/values.yaml").read_text())


def _api_server_cidrs(kube_api: Any) -> list[str]:
    from kubernetes import client

    slices = client.DiscoveryV1Api(kube_api).list_namespaced_endpoint_slice(
        "default", label_selector="kubernetes.io/service-name=kubernetes"
    )
    addresses = {address for s in slices.items for e in s.endpoints or [] for address in e.addresses}
    assert addresses, "no endpoints for the kubernetes Service"
    return sorted(f"{a}/{128 if ':' in a else 32}" for a in addresses)


@pytest.fixture(scope="module")
def namespace(core: Any, kube_api: Any) -> Iterator[str]:
    cidrs = ",".join(_api_server_cidrs(kube_api))
    # Anonymous access, said explicitly, where the chart has an access mode (the access tests cover tokens).
    auth = ["--set", "batch.auth.mode=none"] if "auth" in CHART_VALUES["batch"] else []
    values = [
        "--set", "batch.reconcileSeconds=1",
        "--set", f"batch.maxRunningStages={MAX_RUNNING}", "--set", f"batch.maxStoredBytes={MAX_STORED}",
        "--set", f"batch.retentionSeconds={RETENTION}", "--set", "batch.leaseSeconds=6",
        "--set", f"batch.apiServerEgress.cidrs={{{cidrs}}}", "--set", "replicaCount=3", *auth,
    ]  # fmt: skip
    with batch_release(
        core, namespace=NAMESPACE, release=RELEASE, claim=CLAIM, volume=VOLUME, host_dir=HOST_DIR, size="1Gi",
        values=values,
    ):  # fmt: skip
        yield NAMESPACE


def _ready_pods(core: Any) -> list[Any]:
    return ready_pods(core, NAMESPACE, APP_SELECTOR)


class Service:
    """The release through a port-forward to one ready pod that is not ``avoid``, re-made when that pod goes."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.relay: Any = None
        self.pod = ""
        self.avoid = ""

    def url(self) -> str:
        names = {pod.metadata.name for pod in _ready_pods(self.core)}
        if self.relay is None or self.pod not in names or self.pod == self.avoid:
            if self.relay is not None:
                self.relay.stop()

            def chosen() -> tuple[bool, str]:
                ready = [p.metadata.name for p in _ready_pods(self.core) if p.metadata.name != self.avoid]
                self.pod = ready[0] if ready else ""
                return bool(ready), "no ready pod"

            wait_until(chosen, timeout=180, what="a ready pod")
            self.relay = pod_port_relay(NAMESPACE, self.pod, 8080).start()
        return str(self.relay.url)

    def get(self, path: str) -> requests.Response:
        for _ in range(3):  # a pod going away drops the forwarded connection: ask again through another
            try:
                return requests.get(f"{self.url()}{path}", timeout=30)
            except requests.ConnectionError:
                time.sleep(2)
        raise AssertionError(f"GET {path}: the service did not answer")

    def create(self, body: bytes) -> dict[str, Any]:
        response = requests.post(
            f"{self.url()}/api/v1/jobs", data=body, headers={"Content-Type": "text/plain"}, timeout=120
        )
        assert response.status_code == 202, response.text
        return response.json()  # type: ignore[no-any-return]

    def state(self, job_id: str) -> str:
        response = self.get(f"/api/v1/jobs/{job_id}")
        if response.status_code == 404:
            return "gone"
        response.raise_for_status()
        return str(response.json()["state"])


@pytest.fixture(scope="module")
def service(namespace: str, core: Any) -> Iterator[Service]:
    reached = Service(core)
    yield reached
    if reached.relay is not None:
        reached.relay.stop()


class JobWatch:
    """Watches the release's stage Jobs and keeps the most batch jobs that had a stage Job unfinished at once."""

    def __init__(self, kube_api: Any) -> None:
        from kubernetes import client, watch

        self.api = client.BatchV1Api(kube_api)
        self.watch = watch.Watch()
        self.unfinished: dict[str, str] = {}  # Job name -> batch job id
        self.most = 0
        self.seen: set[str] = set()
        self.error: Exception | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> JobWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping = True
        self.watch.stop()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            self._follow()
        except Exception as error:  # stopping cuts the stream; anything before that is the test's failure
            if not self._stopping:
                self.error = error

    def _follow(self) -> None:
        for event in self.watch.stream(
            self.api.list_namespaced_job, NAMESPACE, label_selector=STAGE_SELECTOR, timeout_seconds=600
        ):
            job = event["object"]
            conditions = (job.status and job.status.conditions) or []
            finished = any(c.status == "True" and c.type in ("Complete", "Failed") for c in conditions)
            if event["type"] == "DELETED" or finished:
                self.unfinished.pop(job.metadata.name, None)
            else:
                self.unfinished[job.metadata.name] = job.metadata.labels[JOB_LABEL]
                self.seen.add(job.metadata.labels[JOB_LABEL])
            self.most = max(self.most, len(set(self.unfinished.values())))


def _text(words: int, seed: int) -> bytes:
    return " ".join(f"w{(seed * 7919 + n) % 997}" for n in range(words)).encode()


@pytest.mark.timeout(540)
def test_parallel_uploads_never_run_more_stages_than_the_cap(service: Service, kube_api: Any) -> None:
    uploads = 20  # the figure; also the default per-owner cap, and every anonymous caller is one owner
    with JobWatch(kube_api) as watched:
        time.sleep(1)  # the watch is listening before the first Job can appear
        service.url()
        with ThreadPoolExecutor(uploads) as pool:
            jobs = list(pool.map(lambda n: service.create(_text(5000, n)), range(uploads)))
        assert any(job["state"] == "queued" for job in jobs), [job["state"] for job in jobs]
        ends: dict[str, str] = {}

        def all_finished() -> tuple[bool, str]:
            listed = service.get("/api/v1/jobs?limit=100").json()["jobs"]
            ends.update({job["id"]: job["state"] for job in listed if job["state"] in TERMINAL})
            return len(ends) == uploads, f"{len(ends)}/{uploads} finished, at most {watched.most} running"

        wait_until(all_finished, timeout=480, interval=1, what="every upload to finish")
    print(f"\nstage Jobs of at most {watched.most} batch jobs ran at once (cap {MAX_RUNNING}), {uploads} uploads")
    assert watched.error is None, f"the watch broke off: {watched.error}"
    assert set(ends.values()) == {"succeeded"}, ends
    assert watched.seen == {job["id"] for job in jobs}
    assert watched.most == MAX_RUNNING


def _lease(kube_api: Any) -> Any:
    from kubernetes import client

    return client.CoordinationV1Api(kube_api).read_namespaced_lease(LEASE, NAMESPACE)


def _logs(core: Any, pod: str) -> str:
    return str(core.read_namespaced_pod_log(pod, NAMESPACE, container="flask-svc"))


@pytest.mark.timeout(240)
def test_one_lease_holder_reconciles_and_another_takes_over(service: Service, core: Any, kube_api: Any) -> None:
    holder = _lease(kube_api).spec.holder_identity
    pods = [pod.metadata.name for pod in _ready_pods(core)]
    assert len(pods) == 3 and holder in pods, (holder, pods)
    leaders = [pod for pod in pods if "reconciler leadership gained" in _logs(core, pod)]
    assert leaders == [holder], f"pods whose log says they lead: {leaders}; the Lease names {holder}"

    service.avoid = holder  # the upload must not go through the pod about to be deleted
    job = service.create(_text(300_000, 99))
    core.delete_namespaced_pod(holder, NAMESPACE)
    deleted = time.monotonic()

    def taken_over() -> tuple[bool, str]:
        now = _lease(kube_api).spec.holder_identity
        return bool(now) and now != holder, f"held by {now}"

    wait_until(taken_over, timeout=60, interval=1, what="another pod to take the Lease")
    successor = _lease(kube_api).spec.holder_identity
    handover = time.monotonic() - deleted
    assert "reconciler leadership gained" in _logs(core, successor)
    print(f"\nLease {LEASE}: {holder} deleted, {successor} took over after {handover:.1f} s")
    wait_until(
        lambda: ((state := service.state(job["id"])) in TERMINAL, state), timeout=120, interval=1, what="the job"
    )
    assert service.state(job["id"]) == "succeeded"


@pytest.mark.timeout(180)
def test_retention_removes_a_finished_job(service: Service, kube_api: Any) -> None:
    from kubernetes import client

    job = service.create(_text(1000, 5))
    wait_until(lambda: ((s := service.state(job["id"])) in TERMINAL, s), timeout=90, interval=1, what="the job")
    assert (JOBS_DIR / job["id"]).is_dir()
    wait_until(
        lambda: ((s := service.state(job["id"])) == "gone", s),
        timeout=RETENTION + 60,
        interval=2,
        what=f"retention ({RETENTION} s) to remove the job",
    )
    assert not (JOBS_DIR / job["id"]).exists()
    stages = client.BatchV1Api(kube_api).list_namespaced_job(NAMESPACE, label_selector=f"{JOB_LABEL}={job['id']}")
    assert [j.metadata.name for j in stages.items if j.metadata.deletion_timestamp is None] == []


def test_an_upload_past_the_stored_bytes_cap_is_507_and_nothing_is_kept(service: Service) -> None:
    before = sorted(p.name for p in HOST_DIR.iterdir())
    url = requests.utils.urlparse(service.url())
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    # The length is announced and no byte sent: the answer must come before the body.
    connection.putrequest("POST", "/api/v1/jobs")
    connection.putheader("Content-Type", "text/plain")
    connection.putheader("Content-Length", str(MAX_STORED + 1))
    connection.endheaders()
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    assert response.status == 507, body
    assert str(response.getheader("Content-Type")).startswith("application/problem+json")
    assert str(MAX_STORED) in body
    assert sorted(p.name for p in HOST_DIR.iterdir()) == before
    assert list((JOBS_DIR / ".incoming").iterdir()) == []


def _as_the_service(core: Any, kube_api: Any) -> Any:
    """A BatchV1Api acting with the service's own ServiceAccount token (as `kubectl create token` makes)."""
    from kubernetes import client

    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(expiration_seconds=600))
    token = core.create_namespaced_service_account_token(SERVICE_ACCOUNT, NAMESPACE, request).status.token
    configuration = client.Configuration()
    base = kube_api.configuration
    configuration.host = base.host
    configuration.ssl_ca_cert = base.ssl_ca_cert
    configuration.verify_ssl = base.verify_ssl
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.BatchV1Api(client.ApiClient(configuration))


def _stage_like(core: Any) -> dict[str, Any]:
    """A Job as the service makes them, from the template the chart gives it."""
    import json

    configmap = core.read_namespaced_config_map(FULLNAME, NAMESPACE)
    job: dict[str, Any] = json.loads(configmap.data["FLASK_SVC_BATCH_JOB_TEMPLATE"])
    job["apiVersion"], job["kind"] = "batch/v1", "Job"
    job["metadata"]["name"] = f"{job['metadata']['name']}-{'0' * 21}-tokenize"
    job["spec"]["template"]["spec"]["containers"][0]["args"] = ["tokenize", "0" * 21]
    return job


def test_the_admission_policy_refuses_what_the_service_token_should_not_create(core: Any, kube_api: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    as_service = _as_the_service(core, kube_api)
    # The shape of a real stage passes (dry run: nothing is created).
    as_service.create_namespaced_job(NAMESPACE, _stage_like(core), dry_run="All")

    with_secret = _stage_like(core)
    pod = with_secret["spec"]["template"]["spec"]
    pod["volumes"].append({"name": "key", "secret": {"secretName": f"{FULLNAME}-batch"}})
    pod["containers"][0]["volumeMounts"].append({"name": "key", "mountPath": "/key"})
    other_image = _stage_like(core)
    other_image["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.36"
    other_command = _stage_like(core)
    other_command["spec"]["template"]["spec"]["containers"][0]["command"] = ["sh", "-c", "cat /data/*/input.txt"]
    with_token = _stage_like(core)
    with_token["spec"]["template"]["spec"]["automountServiceAccountToken"] = True
    refusals = {
        "a Secret volume": with_secret,
        "another image": other_image,
        "another command": other_command,
        "a token": with_token,
    }
    for what, job in refusals.items():
        with pytest.raises(ApiException) as refused:
            as_service.create_namespaced_job(NAMESPACE, job)
        assert refused.value.status in (403, 422), (what, refused.value.status)
        assert "ValidatingAdmissionPolicy" in str(refused.value.body), (what, refused.value.body)
        print(f"\n{what}: refused ({refused.value.status})")
