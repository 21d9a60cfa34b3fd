"""Model serving on the live cluster: `model.enabled=true` runs the `-ml` image, a pod turns Ready only with its
model loaded, and inference answers through the Service, called from a pod inside the cluster.

A release of its own in a restricted namespace, one replica, installed with the same Helm as the main release and
removed at the end.
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
    wait_until,
)

pytestmark = pytest.mark.e2e

NAMESPACE = "flask-svc-model"
RELEASE = "model"
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]  # one of each Iris species
# Run by the -ml image's Python inside the cluster: both inference forms through the Service, answers printed.
CLIENT = """
import json, sys, urllib.request
base, rows = sys.argv[1], json.loads(sys.argv[2])
def post(path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
tensor = {"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}
print(json.dumps({"v2": post("/v2/models/iris/infer", {"inputs": [tensor]}),
                  "v1": post("/api/v1/predict", {"instances": rows})}))
"""


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


def test_inference_through_the_service(core: Any, batch: Any, release: str) -> None:
    (service,) = [
        s for s in core.list_namespaced_service(NAMESPACE, label_selector=INSTANCE).items
        if any(p.name == "http" for p in s.spec.ports)
    ]  # fmt: skip
    port = next(p.port for p in service.spec.ports if p.name == "http")
    repository, tag = _image()
    manifest = load_job_manifest(
        name="infer", namespace=NAMESPACE, image=f"{repository}:{tag}-ml", url="unused", seconds=30, concurrency=1
    )
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", "-c", CLIENT]
    container["args"] = [f"http://{service.metadata.name}.{NAMESPACE}.svc:{port}", json.dumps(ROWS)]
    start_load_job(batch, manifest)

    def finished() -> tuple[bool, str]:
        status = batch.read_namespaced_job("infer", NAMESPACE).status
        return bool(status.succeeded or status.failed), f"active={status.active or 0}"

    wait_until(finished, timeout=120, what="job/infer")
    logs = job_logs(core, NAMESPACE, "infer")
    answer = json.loads(logs.strip().splitlines()[-1])
    output = answer["v2"]["outputs"][0]
    assert output["name"] == "predict" and output["datatype"] == "INT64" and output["shape"] == [3]
    assert output["data"] == [0, 1, 2], answer  # setosa, versicolor, virginica
    assert answer["v1"] == {"predictions": [0, 1, 2]}
