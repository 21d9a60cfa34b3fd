"""The `-ml` image serves its Iris model under the same hardening; the default image carries no numeric library."""

from __future__ import annotations

import json
import urllib.request

import pytest
from sklearn.datasets import load_iris

from harness.models import check_protocol
from tests.container import containerlib as lib

pytestmark = [pytest.mark.container, pytest.mark.timeout(1500)]

NUMERIC = ("numpy", "scipy", "sklearn", "skops", "joblib")
FIND = "import importlib.util, json; print(json.dumps([m for m in {} if importlib.util.find_spec(m)]))"


def _importable(image: str) -> list[str]:
    proc = lib.docker("run", "--rm", "--network=none", "--entrypoint", "python", image, "-c", FIND.format(NUMERIC))
    return list(json.loads(proc.stdout))


def test_the_default_image_has_no_numeric_library(image: lib.BuiltImage) -> None:
    assert _importable(image.id) == []


def test_the_ml_image_has_them_and_its_model(ml_image: lib.BuiltImage) -> None:
    assert _importable(ml_image.id) == list(NUMERIC)
    config = json.loads(lib.docker("image", "inspect", ml_image.id).stdout)[0]["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["FLASK_SVC_MODEL_PATH"] == "/app/model/iris.skops"
    assert config["User"] == "10001:10001"


def _post(url: str, body: object) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        return dict(json.loads(response.read()))


def test_the_ml_image_serves_the_model_hardened(ml_image: lib.BuiltImage) -> None:
    container = lib.run_container(ml_image.id)
    try:
        lib.wait_ready(container, timeout=60)
        status, ready = lib.http_get(container.url("/readyz"))
        model = json.loads(ready)["model"]
        assert status == 200 and model["name"] == "iris" and len(model["sha256"]) == 64
        features, labels = load_iris(return_X_y=True)
        body = {"inputs": [{"name": "input-0", "shape": [150, 4], "datatype": "FP64", "data": features.tolist()}]}
        answer = _post(container.url("/v2/models/iris/infer"), body)
        check_protocol(answer, "inference_response")
        predictions = answer["outputs"][0]["data"]  # type: ignore[index]
        assert sum(p == label for p, label in zip(predictions, labels, strict=True)) > 140
        v1 = _post(container.url("/api/v1/predict"), {"instances": features[:5].tolist()})
        assert v1 == {"predictions": predictions[:5]}
        status, metrics = lib.http_get(container.metrics_url())
        assert f'model_sha256="{model["sha256"]}"' in metrics
    finally:
        container.remove()
