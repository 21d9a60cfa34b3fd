"""Batch analysis on the live cluster: a release with `batch.enabled=true` runs each upload as two Kubernetes Jobs,
an Indexed Job mapping its shards (`batch.parallelism` pods at a time) and a Job merging them.

A release of its own in a namespace of its own that enforces the restricted Pod Security Standard, on a static
hostPath PersistentVolume made here (the local cluster has no dynamic provisioner; the node is this machine). The
tests run in file order and share the release (its callers authenticated as an editor; who may do what is
test_e2e_batch_access.py): a 256 MiB upload (`FLASK_SVC_E2E_BATCH_MIB`) in 8 shards whose answer equals the local
one; the coordinator pods deleted mid-pipeline; one shard's pod deleted (that index alone reruns); a DELETE; what the
ServiceAccount may do; and, on the suite's main release (batch off), that no token is mounted at all. The namespace
and release are `FLASK_SVC_E2E_BATCH_NAMESPACE` (default `flask-svc-batch`), so an engineer can run it beside the
suite's.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from service.analysis import AnalysisOptions, analyze_chunks
from tests.e2e.kube_support import (
    batch_release,
    own_namespace,
    pod_port_relay,
    ready_pods,
    run_tool,
    wait_until,
)

pytestmark = pytest.mark.e2e

NAMESPACE = os.environ.get("FLASK_SVC_E2E_BATCH_NAMESPACE", own_namespace("batch"))
RELEASE = "batch" if NAMESPACE == "flask-svc-batch" else NAMESPACE  # its ClusterRoles are named after it
CLAIM = f"{RELEASE}-flask-svc-batch"
VOLUME = f"flask-svc-e2e-{RELEASE}"
HOST_DIR = Path(f"/var/tmp/flask-svc-e2e-{RELEASE}")
JOBS_DIR = HOST_DIR / "jobs"  # the chart's FLASK_SVC_BATCH_DATA_DIR on the volume, made private by the service
SHARD_BYTES = 32 * 1024 * 1024
PARALLELISM = 2
UPLOAD_MIB = int(os.environ.get("FLASK_SVC_E2E_BATCH_MIB", "256"))  # 1024 for the 1 GiB (a few minutes more)
APP_SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=flask-svc"
JOB_LABEL = "flask-svc.dev/batch-job"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:{RELEASE}-flask-svc"
MiB = 1024 * 1024
TERMINAL = ("succeeded", "failed", "cancelled")


def _text(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    vocabulary = [f"w{n}" for n in range(3000)] + ["the", "and", "café", "naïve", "don't", "l’été"]
    out = bytearray()
    while len(out) < size:
        out += (" ".join(rng.choices(vocabulary, k=50_000)) + "\n").encode()
    return bytes(out[: out.rfind(b" ", 0, size)])


@pytest.fixture(scope="module")
def namespace(core: Any) -> Iterator[str]:
    values = [
        "--set", "batch.reconcileSeconds=2", "--set", f"batch.shardBytes={SHARD_BYTES}",
        "--set", f"batch.parallelism={PARALLELISM}", "--set", "batch.ttlSecondsAfterFinished=600",
        "--set", "replicaCount=2",
    ]  # fmt: skip
    with batch_release(
        core, namespace=NAMESPACE, release=RELEASE, claim=CLAIM, volume=VOLUME, host_dir=HOST_DIR, size="2Gi",
        values=values,
    ):  # fmt: skip
        yield NAMESPACE


def _ready_pods(core: Any) -> list[Any]:
    return ready_pods(core, NAMESPACE, APP_SELECTOR)


class Service:
    """The release reached through a port-forward to one of its ready pods, re-made when that pod goes; requests
    carry the token of a ServiceAccount bound to the chart's editor role (the default `batch.auth.mode`)."""

    def __init__(self, core: Any, token: str) -> None:
        self.core = core
        self.relay: Any = None
        self.auth = {"Authorization": f"Bearer {token}"}

    def url(self) -> str:
        pods = _ready_pods(self.core)
        names = {pod.metadata.name for pod in pods}
        if self.relay is None or self.relay_pod not in names:
            if self.relay is not None:
                self.relay.stop()
            wait_until(lambda: (bool(_ready_pods(self.core)), "no ready pod"), timeout=180, what="a ready pod")
            self.relay_pod = _ready_pods(self.core)[0].metadata.name
            self.relay = pod_port_relay(NAMESPACE, self.relay_pod, 8080).start()
        return str(self.relay.url)

    def job(self, job_id: str) -> dict[str, Any]:
        for _ in range(3):  # a pod going away drops the forwarded connection: ask again through another
            try:
                response = requests.get(f"{self.url()}/api/v1/jobs/{job_id}", headers=self.auth, timeout=30)
                response.raise_for_status()
                return response.json()  # type: ignore[no-any-return]
            except requests.ConnectionError:
                time.sleep(2)
        raise AssertionError(f"job {job_id}: the service did not answer")

    def finished(self, job_id: str, timeout: float) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> tuple[bool, str]:
            last.update(self.job(job_id))
            return last["state"] in TERMINAL, f"{last['state']} {last.get('reason') or ''}"

        wait_until(check, timeout=timeout, interval=2, what=f"job {job_id} to finish")
        return last

    def create(self, body: bytes) -> dict[str, Any]:
        response = requests.post(
            f"{self.url()}/api/v1/jobs", data=body, headers={"Content-Type": "text/plain", **self.auth}, timeout=600
        )
        assert response.status_code == 202, response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def service(namespace: str, core: Any) -> Iterator[Service]:
    from kubernetes import client

    user = "e2e-batch-user"
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=user)))
    client.RbacAuthorizationV1Api().create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=user),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=f"{RELEASE}-flask-svc-batch-editor"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=user, namespace=namespace)],
        ),
    )
    token = run_tool(["kubectl", "create", "token", user, "-n", namespace, "--duration", "1h"])
    assert token.returncode == 0, token.stderr
    reached = Service(core, token.stdout.strip())
    yield reached
    if reached.relay is not None:
        reached.relay.stop()


def _stage_jobs(batch: Any, job_id: str) -> dict[str, Any]:
    jobs = batch.list_namespaced_job(NAMESPACE, label_selector=f"{JOB_LABEL}={job_id}").items
    return {job.metadata.labels["flask-svc.dev/batch-stage"]: job for job in jobs}


@pytest.mark.timeout(max(600, 2 * UPLOAD_MIB))  # 1 GiB: about 4 minutes of map on a busy 2-core machine, 4 local
def test_a_large_upload_is_mapped_by_an_indexed_job_then_merged(service: Service, batch: Any) -> None:
    text = _text(UPLOAD_MIB * MiB, seed=3)
    started = time.monotonic()
    job = service.create(text)
    uploaded = time.monotonic() - started
    # The local answer while the cluster works, read in 1 MiB chunks as a stream would be.
    expected = analyze_chunks((text[at : at + MiB] for at in range(0, len(text), MiB)), AnalysisOptions()).counts
    done = service.finished(job["id"], timeout=max(480, UPLOAD_MIB))
    elapsed = time.monotonic() - started
    assert done["state"] == "succeeded", done

    # The outcome on the volume ends the job; the Job object says Complete once its pod has exited.
    shards = done["progress"]["shards"]
    assert shards == -(-len(text) // SHARD_BYTES)
    assert done["progress"] == {"shards": shards, "shards_done": shards, "bytes_done": len(text)}

    def both_complete() -> tuple[bool, str]:
        found = _stage_jobs(batch, job["id"])
        states = {stage: found[stage].status.succeeded for stage in found}
        return states == {"tokenize": shards, "count": 1}, str(states)

    wait_until(both_complete, timeout=60, what="both stage Jobs to be Complete")
    stages = _stage_jobs(batch, job["id"])
    tokenize, count = stages["tokenize"], stages["count"]
    spec = tokenize.spec
    assert (spec.completion_mode, spec.completions, spec.parallelism) == ("Indexed", shards, PARALLELISM)
    assert tokenize.status.completed_indexes == f"0-{shards - 1}" and not tokenize.status.failed_indexes
    # In turn: the merge Job is created once every shard's outcome is on the volume (the Indexed Job turns Complete
    # a moment later, when the pods have exited); creation times have whole seconds.
    maps = [json.loads((JOBS_DIR / job["id"] / f"map-{index:05d}.json").read_text()) for index in range(shards)]
    assert all(outcome["ok"] for outcome in maps)
    assert count.metadata.creation_timestamp.timestamp() >= int(max(outcome["finished"] for outcome in maps))
    assert tokenize.status.start_time <= count.metadata.creation_timestamp
    peaks = [outcome["peak_rss_kib"] for outcome in maps]
    assert done["stages"]["tokenize"]["job_name"] == tokenize.metadata.name
    result = requests.get(
        f"{service.url()}/api/v1/jobs/{job['id']}/result?limit=100", headers=service.auth, timeout=30
    ).json()
    assert (result["bytes"], result["tokens"], result["unique"]) == (len(text), expected.total, expected.unique)
    assert [(entry["word"], entry["count"]) for entry in result["counts"]] == expected.most_common(100)
    merged = json.loads((JOBS_DIR / job["id"] / "merge.json").read_text())
    print(
        f"{UPLOAD_MIB} MiB batch job on the cluster ({shards} shards, parallelism {PARALLELISM}): "
        f"upload {uploaded:.1f} s, done after {elapsed:.1f} s; map pods' peak RSS {min(peaks)}-{max(peaks)} KiB, "
        f"merge {merged['peak_rss_kib']} KiB"
    )


@pytest.mark.timeout(420)
def test_the_job_completes_when_the_coordinators_are_deleted_mid_pipeline(service: Service, core: Any) -> None:
    job = service.create(_text(30 * MiB, seed=5))
    assert job["state"] in ("tokenizing", "queued")
    for pod in _ready_pods(core):  # every replica: the new pods must pick the job up from the volume and the Jobs
        core.delete_namespaced_pod(pod.metadata.name, NAMESPACE)
    done = service.finished(job["id"], timeout=360)
    assert done["state"] == "succeeded", done


@pytest.mark.timeout(900)
def test_one_shard_pod_deleted_reruns_that_index_alone(service: Service, core: Any, batch: Any) -> None:
    # A shard takes about a second: the pod may finish it between the check and the delete. Then nothing was
    # deleted mid-shard (the Job counts no failure) and the experiment is run again, at most three times.
    for attempt, seed in enumerate((6, 16, 26), start=1):
        mapped, by_index, victim = _delete_shard_one_pod(service, core, batch, seed)
        if mapped.status.failed or attempt == 3:
            break
        print(f"attempt {attempt}: shard 1's pod {victim} finished before it was deleted ({by_index}); again")
    assert mapped.status.completed_indexes == "0-2" and not mapped.status.failed_indexes, mapped.status
    # Each index ended with one succeeded pod; index 1's is a new one, and only index 1 ran twice (the Job's count).
    assert sorted(by_index) == ["0", "1", "2"] and all(len(names) == 1 for names in by_index.values()), by_index
    assert victim not in by_index["1"][0]
    assert mapped.status.succeeded == 3 and mapped.status.failed == 1, mapped.status  # the deleted pod, once
    print(f"shard 1's pod deleted: the job succeeded; pods {by_index}, Job failed count {mapped.status.failed}")


def _delete_shard_one_pod(service: Service, core: Any, batch: Any, seed: int) -> tuple[Any, dict[str, list[str]], str]:
    """A three-shard job whose shard 1 pod is deleted while it runs: the finished Indexed Job, its pods by index,
    and the deleted pod's name."""
    job = service.create(_text(3 * SHARD_BYTES - MiB, seed=seed))  # three shards
    name = job["stages"]["tokenize"]["job_name"]
    index = "batch.kubernetes.io/job-completion-index"

    outcome = JOBS_DIR / job["id"] / "map-00001.json"

    def shard_pod_running() -> tuple[bool, str]:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={name},{index}=1").items
        running = [pod for pod in pods if pod.status.phase == "Running"]
        assert not outcome.exists(), "shard 1 was done before its pod could be deleted"
        return bool(running), ",".join(f"{pod.metadata.name}:{pod.status.phase}" for pod in pods) or "no pod yet"

    wait_until(shard_pod_running, timeout=120, interval=0.2, what=f"the running pod of shard 1 of {name}")
    (victim,) = core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={name},{index}=1").items
    core.delete_namespaced_pod(victim.metadata.name, NAMESPACE)
    done = service.finished(job["id"], timeout=360)
    assert done["state"] == "succeeded", done

    def complete() -> tuple[bool, str]:  # the outcomes end the job; the Job turns Complete once its pods exit
        status = batch.read_namespaced_job(name, NAMESPACE).status
        return any(c.type == "Complete" and c.status == "True" for c in status.conditions or []), str(status)

    wait_until(complete, timeout=120, what=f"the Indexed Job {name} to be Complete")
    mapped = batch.read_namespaced_job(name, NAMESPACE)
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={name}").items
    by_index: dict[str, list[str]] = {}
    for pod in pods:
        by_index.setdefault(pod.metadata.labels[index], []).append(f"{pod.metadata.name}:{pod.status.phase}")
    return mapped, by_index, victim.metadata.name


@pytest.mark.timeout(300)
def test_delete_removes_the_jobs_and_the_files(service: Service, batch: Any) -> None:
    from kubernetes import client

    job = service.create(_text(2 * SHARD_BYTES, seed=8))  # two shards: the map's pods run while it is deleted
    wait_until(lambda: (bool(_stage_jobs(batch, job["id"])), "no Job yet"), timeout=60, what="the first Job")
    response = requests.delete(f"{service.url()}/api/v1/jobs/{job['id']}", headers=service.auth, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["state"] in ("cancelled", "succeeded")
    wait_until(
        lambda: (not _stage_jobs(batch, job["id"]), str(sorted(_stage_jobs(batch, job["id"])))),
        timeout=120,
        what="the stage Jobs to go",
    )
    core = client.CoreV1Api()

    def no_pods() -> tuple[bool, str]:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"{JOB_LABEL}={job['id']}").items
        return not pods, ",".join(pod.metadata.name for pod in pods)

    wait_until(no_pods, timeout=120, what="every shard's pods to go")
    assert not (JOBS_DIR / job["id"]).exists()
    gone = requests.get(f"{service.url()}/api/v1/jobs/{job['id']}", headers=service.auth, timeout=30)
    assert gone.status_code == 404


def test_the_service_account_can_do_nothing_beyond_its_role(namespace: str) -> None:
    listing = run_tool(["kubectl", "auth", "can-i", "--list", "--as", SERVICE_ACCOUNT, "-n", NAMESPACE])
    assert listing.returncode == 0, listing.stderr
    granted: dict[str, list[str]] = {}
    for line in listing.stdout.splitlines()[1:]:
        if line.startswith((" ", "\t")):  # a non-resource URL (discovery, /healthz, …): no object at all
            continue
        verbs = re.findall(r"\[([^\]]*)\]", line)[-1].split()
        granted[line.split()[0]] = verbs
    # Beyond its Role: only what every authenticated identity may do (ask about itself), and system:auth-delegator's
    # two reviews, which check callers (batch.auth.mode=kubernetes).
    everyone = {"selfsubjectaccessreviews.authorization.k8s.io", "selfsubjectrulesreviews.authorization.k8s.io",
                "selfsubjectreviews.authentication.k8s.io"}  # fmt: skip
    reviews = {"tokenreviews.authentication.k8s.io", "subjectaccessreviews.authorization.k8s.io"}
    assert set(granted) - everyone == {"jobs.batch", "leases.coordination.k8s.io", *reviews}, listing.stdout
    assert all(granted[review] == ["create"] for review in reviews), listing.stdout
    assert sorted(granted["jobs.batch"]) == ["create", "delete", "get", "list", "watch"], listing.stdout
    # The reconciler's Lease: create (which cannot name an object), then get/update of its own Lease only.
    leases = {
        " ".join(re.findall(r"\[([^\]]*)\]", line)[-2:])
        for line in listing.stdout.splitlines()
        if line.startswith("leases.coordination.k8s.io")
    }
    assert leases == {" create", f"{RELEASE}-flask-svc-batch-reconciler get update"}, listing.stdout
    for verb, resource, where in (
        ("create", "pods", NAMESPACE),
        ("get", "secrets", NAMESPACE),
        ("patch", "jobs", NAMESPACE),
        ("create", "jobs", "default"),
    ):
        answer = run_tool(["kubectl", "auth", "can-i", verb, resource, "--as", SERVICE_ACCOUNT, "-n", where])
        assert answer.stdout.strip() == "no", f"{verb} {resource} in {where}: {answer.stdout}"


def test_with_batch_off_no_token_is_mounted(core: Any, settings: Any) -> None:
    pods = core.list_namespaced_pod(settings.namespace, label_selector=f"app.kubernetes.io/instance={settings.release}")
    app_pods = [p for p in pods.items if "helm.sh/hook" not in (p.metadata.annotations or {})]
    assert app_pods, f"no pod of the main release in {settings.namespace}"
    for pod in app_pods:
        assert pod.spec.automount_service_account_token is False
        mounts = [m.mount_path for c in pod.spec.containers for m in (c.volume_mounts or [])]
        assert not any(path.startswith("/var/run/secrets/kubernetes.io") for path in mounts), mounts
