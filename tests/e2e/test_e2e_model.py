"""Model serving on the live cluster: `model.enabled=true` runs the `-ml` image, a pod turns Ready only with its
model loaded, and inference answers through the Service, called from a pod inside the cluster.

A release of its own in a restricted namespace (named after FLASK_SVC_E2E_RELEASE, so parallel runs do not meet), one
replica, installed with the same Helm as the main release and removed at the end. The pod runs at the chart's memory
limit for a model while the largest bodies allowed arrive on every request thread at once, and must not restart.

One replica on a loaded machine can fail a readiness probe now and then, and the Service then refuses connections
for a moment (CI saw "connection refused", issue 24): the clients wait for a ready endpoint before they start and
retry a refused connection a bounded number of times. An HTTP answer is never retried, whatever its status.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.kube_support import (
    APP_PORT,
    RELEASE_ENV,
    api_warnings,
    delete_namespace,
    helm_binary,
    job_logs,
    load_job_manifest,
    pod_is_ready,
    pod_port_relay,
    restricted_namespace,
    run_tool,
    start_load_job,
    wait_for_service_endpoints,
    wait_until,
)

pytestmark = pytest.mark.e2e

NAMESPACE = f"{os.environ.get(RELEASE_ENV, 'flask-svc')}-model"
RELEASE = NAMESPACE
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]  # one of each Iris species
PRESSURE_SECONDS = float(os.environ.get("FLASK_SVC_E2E_MODEL_PRESSURE_SECONDS", "60"))
# Both in-cluster clients: a refused or reset connection is retried, 30 times 2 s apart at most; an HTTP answer is not.
POST = """
import json, sys, time, urllib.error, urllib.request
def post(url, data, attempts=30):
    for attempt in range(attempts):
        request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            if not isinstance(reason, (ConnectionRefusedError, ConnectionResetError)) or attempt == attempts - 1:
                raise
            print(f"{url}: {reason}; retrying", file=sys.stderr, flush=True)
            time.sleep(2)
    raise AssertionError("unreachable")
"""
# Run by the -ml image's Python inside the cluster: both inference forms through the Service, answers printed.
CLIENT = (
    POST
    + """
base, rows = sys.argv[1], json.loads(sys.argv[2])
tensor = {"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}
answers = {}
for key, path, body in (("v2", "/v2/models/iris/infer", {"inputs": [tensor]}),
                        ("v1", "/api/v1/predict", {"instances": rows})):
    status, data = post(base + path, json.dumps(body).encode())
    answers[key] = json.loads(data) if status == 200 else {"status": status, "body": data.decode()}
print(json.dumps(answers))
"""
)
# The largest bodies the default cap allows (docs/model-serving.md, "Memory bounded by construction"), from 4 threads
# (the chart's gunicorn.threads) for `seconds`: the valid one at its longest, and the one that makes the most Python
# objects (refused, 422).
PRESSURE = (
    POST
    + """
import threading
from service.inference.protocol import body_limit
base, seconds = sys.argv[1], float(sys.argv[2])
limit = body_limit(4, 1024)
rows = [[-2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 5e-324]] * 1024
largest = json.dumps({"inputs": [{"name": "x", "shape": [1024, 4], "datatype": "FP64", "data": rows}]}, indent=4)
zeros = ",".join(["0"] * ((limit - 100) // 2))
worst = '{"inputs":[{"name":"x","shape":[1024,4],"datatype":"FP64","data":[' + zeros + ']}]}'
bodies = [largest.encode(), worst.encode()]
assert max(map(len, bodies)) <= limit
statuses, lock, end = {}, threading.Lock(), time.monotonic() + seconds
def run(index):
    while time.monotonic() < end:
        status, _ = post(base + "/v2/models/iris/infer", bodies[index % 2])
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
        index += 1
threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({str(status): count for status, count in statuses.items()}))
"""
)


def _image() -> tuple[str, str]:
    repository, _, tag = os.environ.get("FLASK_SVC_E2E_IMAGE", "flask-svc:e2e").rpartition(":")
    return repository, tag


@pytest.fixture(scope="module")
def release(core: Any) -> Iterator[str]:
    helm = helm_binary()
    assert helm, "helm is not on PATH (make setup-e2e)"
    delete_namespace(core, NAMESPACE)
    restricted_namespace(core, NAMESPACE)
    repository, tag = _image()
    result = run_tool(
        [
            helm, "install", RELEASE, "charts/flask-svc", "--namespace", NAMESPACE, "--wait", "--timeout", "4m",
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", "image.pullPolicy=IfNotPresent", "--set", "model.enabled=true",
            "--set", "replicaCount=1", "--set", "autoscaling.enabled=false", "--set", "tests.enabled=false",
        ]
    )  # fmt: skip
    try:
        assert result.returncode == 0, f"helm install failed:\n{result.stdout}\n{result.stderr}"
        assert not api_warnings(result.stderr), result.stderr
        yield RELEASE
    finally:
        run_tool([helm, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--ignore-not-found"])
        delete_namespace(core, NAMESPACE)


def _pods(core: Any) -> list[Any]:
    items = core.list_namespaced_pod(NAMESPACE, label_selector=INSTANCE).items
    return [p for p in items if p.metadata.deletion_timestamp is None]


def test_the_ml_image_is_ready_only_with_its_model(core: Any, release: str) -> None:
    (pod,) = _pods(core)
    repository, tag = _image()
    assert pod.spec.containers[0].image == f"{repository}:{tag}-ml"
    assert pod_is_ready(pod)
    with pod_port_relay(NAMESPACE, pod.metadata.name, APP_PORT) as relay:
        ready = requests.get(f"{relay.url}/readyz", timeout=10).json()
        metadata = requests.get(f"{relay.url}/v2/models/iris", timeout=10).json()
    assert ready["status"] == "ok" and ready["model"]["name"] == "iris", ready
    assert metadata["versions"] == [ready["model"]["version"]]
    # The worker logged the load before the readiness probe could pass: the model is loaded while the app is built.
    logs = core.read_namespaced_pod_log(pod.metadata.name, NAMESPACE)
    assert f"model iris version {ready['model']['version']} loaded" in logs


def _service_url(core: Any) -> str:
    (service,) = [
        s for s in core.list_namespaced_service(NAMESPACE, label_selector=INSTANCE).items
        if any(p.name == "http" for p in s.spec.ports)
    ]  # fmt: skip
    port = next(p.port for p in service.spec.ports if p.name == "http")
    name = service.metadata.name
    wait_for_service_endpoints(core, NAMESPACE, name)
    return f"http://{name}.{NAMESPACE}.svc:{port}"


def _run_client(core: Any, batch: Any, name: str, script: str, args: list[str], seconds: float) -> str:
    """Run ``script`` with the -ml image's Python in a Job; its last line of output."""
    repository, tag = _image()
    manifest = load_job_manifest(
        name=name, namespace=NAMESPACE, image=f"{repository}:{tag}-ml", url="unused", seconds=seconds, concurrency=1
    )
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", "-c", script]
    container["args"] = args
    start_load_job(batch, manifest)

    def finished() -> tuple[bool, str]:
        status = batch.read_namespaced_job(name, NAMESPACE).status
        return bool(status.succeeded or status.failed), f"active={status.active or 0}"

    wait_until(finished, timeout=seconds + 120, what=f"job/{name}")
    logs = job_logs(core, NAMESPACE, name)
    assert batch.read_namespaced_job(name, NAMESPACE).status.succeeded, logs
    return logs.strip().splitlines()[-1]


def test_inference_through_the_service(core: Any, batch: Any, release: str) -> None:
    answer = json.loads(_run_client(core, batch, "infer", CLIENT, [_service_url(core), json.dumps(ROWS)], 30))
    output = answer["v2"]["outputs"][0]
    assert output["name"] == "predict" and output["datatype"] == "INT64" and output["shape"] == [3]
    assert output["data"] == [0, 1, 2], answer  # setosa, versicolor, virginica
    assert answer["v1"] == {"predictions": [0, 1, 2]}


def test_the_largest_bodies_on_every_thread_do_not_restart_the_pod(core: Any, batch: Any, release: str) -> None:
    """At the chart's memory limit for a model, the largest bodies allowed, on every request thread at once, for a
    minute: the pod is never restarted (an OOM kill would restart it) and serves after."""
    (pod,) = _pods(core)
    limit = pod.spec.containers[0].resources.limits["memory"]
    args = [_service_url(core), f"{PRESSURE_SECONDS:g}"]
    statuses = json.loads(_run_client(core, batch, "pressure", PRESSURE, args, PRESSURE_SECONDS))
    print(f"model pressure at the {limit} limit, {PRESSURE_SECONDS:g} s: answers by status {statuses}")
    assert set(statuses) == {"200", "422"} and min(statuses.values()) > 0, statuses
    (after,) = _pods(core)
    assert after.metadata.name == pod.metadata.name
    assert after.status.container_statuses[0].restart_count == 0, f"restarted at the {limit} limit: {statuses}"
    answer = json.loads(_run_client(core, batch, "after", CLIENT, [_service_url(core), json.dumps(ROWS)], 30))
    assert answer["v1"] == {"predictions": [0, 1, 2]}
