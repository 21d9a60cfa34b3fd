"""The model-serving handlers in process: the `model.predict` span with its batch size (real OTLP bytes on
loopback), inference metrics by outcome, the OpenAPI document, and what an app without a model does not serve.

Predictions over the whole Iris set, the refusals and the bad model files on a real gunicorn are in
tests/integration/test_inference_api.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from harness.models import check_protocol, write_iris
from harness.otlp import otlp_receiver
from service.inference.web import MODEL_EXTENSION
from service.tracing import tracing_of
from tests.app.conftest import make_app, sample

ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def iris_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iris(tmp_path_factory.mktemp("model") / "iris.skops")


@pytest.fixture(scope="module")
def model_app(iris_file: Path) -> Flask:
    return make_app(FLASK_SVC_MODEL_PATH=str(iris_file), FLASK_SVC_MODEL_MAX_INSTANCES="8")


def _infer(rows: list[list[float]]) -> dict[str, object]:
    return {"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": rows}]}


def test_predict_span_carries_the_batch_size(iris_file: Path) -> None:
    with otlp_receiver() as receiver:
        app = make_app(FLASK_SVC_MODEL_PATH=str(iris_file), OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        tracing = tracing_of(app)
        assert tracing is not None
        client = app.test_client()
        assert client.post("/v2/models/iris/infer", json=_infer([ROW] * 5)).status_code == 200
        assert client.post("/api/v1/predict", json={"instances": [ROW]}).status_code == 200
        assert tracing.provider.force_flush(5000)
        tracing.stop()
        spans = list(receiver.spans)
    servers = {s.span_id: s for s in spans if s.name.startswith("POST ")}
    predicts = [s for s in spans if s.name == "model.predict"]
    assert sorted(s.attributes["model.batch_size"] for s in predicts) == [1, 5]
    assert all(s.attributes["model.name"] == "iris" for s in predicts)
    assert all(s.parent_span_id in servers for s in predicts)  # inside the request's server span


def test_outcomes_are_counted_by_model(model_app: Flask) -> None:
    client = model_app.test_client()

    def count(outcome: str) -> float:
        return sample(model_app, "flask_svc_inference_duration_seconds_count", {"model": "iris", "outcome": outcome})

    before = {outcome: count(outcome) for outcome in ("ok", "invalid", "error")}
    assert client.post("/v2/models/iris/infer", json=_infer([ROW] * 3)).status_code == 200
    assert client.post("/v2/models/iris/infer", json=_infer([ROW] * 9)).status_code == 413
    assert client.post("/api/v1/predict", json={"instances": [ROW[:2]]}).status_code == 422
    assert client.post("/v2/models/iris/infer", json={"id": "no inputs"}).status_code == 422
    assert client.post("/v2/models/iris/infer", data=b"{", content_type="application/json").status_code == 400
    assert count("ok") == before["ok"] + 1
    assert count("invalid") == before["invalid"] + 4
    assert count("error") == before["error"]
    assert sample(model_app, "flask_svc_inference_instances_bucket", {"model": "iris", "le": "4.0"}) >= 1


def test_requests_the_model_cannot_serve_are_problems(model_app: Flask) -> None:
    client = model_app.test_client()
    version = model_app.extensions[MODEL_EXTENSION].version
    unknown = client.post("/v2/models/other/infer", json=_infer([ROW]))
    assert unknown.status_code == 404 and unknown.mimetype == "application/json"
    check_protocol(unknown.get_json(), "inference_error_response")
    assert unknown.get_json()["error"] == unknown.get_json()["detail"] == "no model other; this server serves iris"
    assert client.get("/v2/models/iris/versions/0/ready").status_code == 404
    assert client.get(f"/v2/models/iris/versions/{version}/ready").get_json() == {"name": "iris", "ready": True}
    named = client.post("/v2/models/iris/infer", data=b"{}", content_type="text/plain")
    assert named.status_code == 415 and "text/plain" in named.get_json()["error"]


@pytest.mark.parametrize("path", ["/v2/models/iris/infer", "/api/v1/predict", "/v1/models/iris:predict"])
def test_a_body_without_content_type_is_read_as_json(model_app: Flask, path: str) -> None:
    body = _infer([ROW]) if path.startswith("/v2/") else {"instances": [ROW]}
    response = model_app.test_client().post(path, data=json.dumps(body).encode())
    assert response.status_code == 200, response.get_json()


def test_a_body_beyond_the_cap_is_refused_with_the_limit_named(model_app: Flask) -> None:
    from service.inference.protocol import body_limit

    limit = body_limit(4, 8)  # FLASK_SVC_MODEL_MAX_INSTANCES=8
    body = b'{"instances": [' + b"[1, 2, 3, 4], " * (limit // 14) + b"[1, 2, 3, 4]]}"
    response = model_app.test_client().post("/api/v1/predict", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.headers["Connection"] == "close"  # the rest of the body is never read
    assert (
        response.get_json()["error"]
        == f"the body ({len(body)} bytes) is larger than the {limit}-byte limit of inference requests"
    )


def test_the_cap_can_be_set(iris_file: Path) -> None:
    app = make_app(FLASK_SVC_MODEL_PATH=str(iris_file), FLASK_SVC_MODEL_MAX_BODY_BYTES="100")
    response = app.test_client().post("/api/v1/predict", json={"instances": [ROW] * 5})
    assert response.status_code == 413 and "100-byte limit" in response.get_json()["error"]


def test_the_kserve_v1_routes(model_app: Flask) -> None:
    client = model_app.test_client()
    assert client.get("/v1/models/iris").get_json() == {"name": "iris", "ready": True}
    assert client.post("/v1/models/iris:predict", json={"instances": [ROW]}).get_json() == {"predictions": [0]}
    unknown = client.post("/v1/models/other:predict", json={"instances": [ROW]})
    assert unknown.status_code == 404 and "no model other" in unknown.get_json()["error"]
    assert client.get("/v1/models/other").status_code == 404


def test_openapi_documents_the_bodies(model_app: Flask) -> None:
    document = model_app.test_client().get("/openapi.json").get_json()
    paths = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer", "/api/v1/predict")
    for path in (*paths, "/v1/models/{name}:predict"):
        operation = document["paths"][path]["post"]
        assert operation["requestBody"]["required"] is True
        assert {"200", "413", "422"} <= set(operation["responses"]), path
        for status in ("413", "422"):  # as the handlers answer, not as the other routes' problem documents
            assert "error" in operation["responses"][status]["content"]["application/json"]["schema"]["required"]
    assert document["components"]["schemas"]["RequestInput"]["required"] == ["name", "shape", "datatype"]


def test_without_a_model_there_are_no_model_endpoints(client: FlaskClient) -> None:
    assert client.post("/api/v1/predict", json={"instances": [ROW]}).status_code == 404
    assert client.get("/v2/health/ready").status_code == 404
    assert "model" not in client.get("/readyz").get_json()
    assert "model" not in client.get("/version").get_json()


def _binary_request(values: bytes, size: int, header: int | None = None, **extra: object) -> tuple[bytes, str]:
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": size}}
    head = json.dumps({"inputs": [tensor], **extra}).encode()
    return head + values, str(len(head) if header is None else header)


def test_the_binary_extension_both_ways(model_app: Flask) -> None:
    import numpy as np

    values = np.array([ROW], dtype="<f4").tobytes()
    body, length = _binary_request(values, 16, parameters={"binary_data_output": True})
    response = model_app.test_client().post(
        "/v2/models/iris/infer",
        data=body,
        headers={"Inference-Header-Content-Length": length, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.data
    split = int(response.headers["Inference-Header-Content-Length"])
    document = json.loads(response.data[:split])
    assert document["outputs"][0]["parameters"] == {"binary_data_size": 8}
    assert np.frombuffer(response.data[split:], "<i8").tolist() == [0]


@pytest.mark.parametrize(
    ("header", "values", "status", "field"),
    [
        (10**6, b"\0" * 16, 400, "Inference-Header-Content-Length"),  # beyond the body
        (-1, b"\0" * 16, 400, "Inference-Header-Content-Length"),
        (None, b"\0" * 12, 400, "inputs[0].parameters.binary_data_size"),  # truncated tensor
        (None, b"\0" * 24, 400, "inputs[0].parameters.binary_data_size"),  # sizes do not add up
    ],
)
def test_binary_bodies_that_do_not_add_up_are_refused(
    model_app: Flask, header: int | None, values: bytes, status: int, field: str
) -> None:
    body, length = _binary_request(values, 16, header)
    response = model_app.test_client().post(
        "/v2/models/iris/infer", data=body, headers={"Inference-Header-Content-Length": length}
    )
    assert response.status_code == status
    assert response.get_json()["field"] == field and response.get_json()["error"].startswith(field)


def test_octet_stream_without_the_binary_header_is_415(model_app: Flask) -> None:
    response = model_app.test_client().post(
        "/v2/models/iris/infer", data=b"{}", headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 415
