"""Model serving's domain: loading a model file safely, and checking requests against the model."""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris

from harness.models import (
    UNTRUSTED_TYPE,
    check_protocol,
    write_code_running_pickle,
    write_iris,
    write_untrusted,
)
from service.inference.loading import ModelRefused, ModelSource, inspect, load
from service.inference.model import ServedModel
from service.inference.protocol import InferenceRequest, InvalidInput, PredictRequest, v1_batch, v2_batch, v2_response
from tests.unit.inference.conftest import binary_request, v2_request


def test_training_writes_the_same_bytes_every_time(tmp_path: Path, iris_file: Path) -> None:
    assert write_iris(tmp_path / "again.skops").read_bytes() == iris_file.read_bytes()


def test_loaded_model_describes_itself(model: ServedModel, iris_file: Path) -> None:
    import hashlib

    digest = hashlib.sha256(iris_file.read_bytes()).hexdigest()
    assert (model.name, model.version, model.sha256) == ("iris", digest[:12], digest)
    assert (model.features, model.output_datatype) == (4, "INT64")
    check_protocol(model.metadata(), "metadata_model_response")
    features, labels = load_iris(return_X_y=True)
    assert (np.array(model.predict(features)) == labels).mean() > 0.95


def test_name_and_version_come_from_the_configuration(iris_file: Path) -> None:
    named = load(ModelSource(str(iris_file), name="flowers", version="2"))
    assert (named.name, named.version) == ("flowers", "2")


def test_untrusted_type_is_refused_by_name_and_allowed_by_name(tmp_path: Path) -> None:
    path = write_untrusted(tmp_path / "halver.skops")
    with pytest.raises(ModelRefused, match=rf"untrusted type {UNTRUSTED_TYPE};.*FLASK_SVC_MODEL_TRUSTED_TYPES"):
        inspect(ModelSource(str(path)))
    allowed = load(ModelSource(str(path), trusted_types=(UNTRUSTED_TYPE,)))
    assert allowed.predict(np.array([[4.0, 0, 0, 0]])).tolist() == [2.0]
    assert allowed.output_datatype == "FP64"


def test_pickle_is_refused_without_being_opened(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_code_running_pickle(tmp_path / "model.pkl", marker)
    with pytest.raises(ModelRefused, match=r"is not a skops file and was not opened.*FLASK_SVC_MODEL_ALLOW_PICKLE"):
        load(ModelSource(str(path)))
    assert not marker.exists()


def test_allowed_pickle_loads_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression(max_iter=1000).fit(features, labels)))
    with caplog.at_level(logging.WARNING):
        model = load(ModelSource(str(path), allow_pickle=True))
    assert model.name == "model" and model.features == 4
    assert any("pickle" in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)


def test_a_pipeline_predicts_as_scikit_learn_does(tmp_path: Path) -> None:
    """The served model calls a pipeline's steps itself (nested pipelines and "passthrough" steps included): the
    same predictions, bit for bit, as the pipeline's own predict."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    features, labels = load_iris(return_X_y=True)
    inner = make_pipeline(StandardScaler(), "passthrough", PCA(n_components=3))
    pipeline = make_pipeline(inner, None, MinMaxScaler(), make_pipeline(LogisticRegression(max_iter=1000)))
    pipeline.fit(features, labels)
    path = tmp_path / "pipeline.pkl"
    path.write_bytes(pickle.dumps(pipeline))
    model = load(ModelSource(str(path), allow_pickle=True))
    batch = np.random.default_rng(7).normal(size=(200, 4)) * 3
    assert model.predict(batch).tolist() == pipeline.predict(batch).tolist()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"PK\x03\x04 not really a zip", "is not a valid skops file"),
        (None, "cannot be read"),
    ],
)
def test_unusable_files_are_refused(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "model.skops"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelRefused, match=expected):
        inspect(ModelSource(str(path)))


def test_an_object_without_predict_is_refused(tmp_path: Path) -> None:
    from skops.io import dump

    dump({"not": "a model"}, tmp_path / "dict.skops")
    with pytest.raises(ModelRefused, match="not a fitted estimator"):
        load(ModelSource(str(tmp_path / "dict.skops")))


def test_v2_accepts_flat_and_nested_data(model: ServedModel) -> None:
    flat = v2_batch(v2_request([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]), model, 10)
    nested = v2_batch(v2_request([2, 4], [[1, 2, 3, 4], [5, 6, 7, 8]]), model, 10)
    assert flat.shape == (2, 4) and (flat == nested).all()
    assert v2_batch(v2_request([1, 4], [1, 2, 3, 4], "INT32"), model, 10).tolist() == [[1, 2, 3, 4]]


@pytest.mark.parametrize(
    ("request_", "field", "status"),
    [
        (v2_request([1, 3], [1, 2, 3]), "inputs[0].shape", 422),
        (v2_request([4], [1, 2, 3, 4]), "inputs[0].shape", 422),
        (v2_request([0, 4], []), "inputs[0].shape", 422),
        (v2_request([11, 4], [1.0] * 44), "inputs[0].shape", 413),
        (v2_request([2, 4], [1, 2, 3, 4]), "inputs[0].data", 422),
        (v2_request([1, 4], [1, 2, 3, "4"]), "inputs[0].data[3]", 422),
        (v2_request([1, 4], [1, 2, True, 4]), "inputs[0].data[2]", 422),
        (v2_request([1, 4], [1, math.nan, 3, 4]), "inputs[0].data[1]", 422),
        (v2_request([1, 4], [1, 2, -math.inf, 4]), "inputs[0].data[2]", 422),
        (v2_request([1, 4], [1, 2, 3, 10**400]), "inputs[0].data[3]", 422),
        (v2_request([1, 4], [1, 2, 3, 4.5], "INT64"), "inputs[0].data[3]", 422),
        (v2_request([1, 4], [1, 2, 65520.0, 4], "FP16"), "inputs[0].data[2]", 422),
        (v2_request([1, 4], [1, -3.5e38, 3, 4], "FP32"), "inputs[0].data[1]", 422),
        (v2_request([1, 4], [1, 2, 3, 128], "INT8"), "inputs[0].data[3]", 422),
        (v2_request([1, 4], [-1, 2, 3, 4], "UINT8"), "inputs[0].data[0]", 422),
        (v2_request([1, 4], ["a", "b", "c", "d"], "BYTES"), "inputs[0].datatype", 422),
        (v2_request([1, 4], [1, 2, 3, 4], outputs=[{"name": "proba"}]), "outputs[0].name", 422),
        (InferenceRequest.model_validate({"inputs": []}), "inputs", 422),
    ],
)
def test_v2_refusals_name_the_field(model: ServedModel, request_: InferenceRequest, field: str, status: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        v2_batch(request_, model, 10)
    assert (refused.value.field, refused.value.status) == (field, status)


@pytest.mark.parametrize(
    ("instances", "field", "status"),
    [
        ([[1, 2, 3]], "instances[0]", 422),
        ([[1, 2, 3, 4], [5, 6, 7, None]], "instances[1][3]", 422),
        ([[1, 2, 3, 4], [5, math.inf, 7, 8]], "instances[1][1]", 422),
        ([[1, 2, 3, 4]] * 11, "instances", 413),
    ],
)
def test_v1_refusals_name_the_field(model: ServedModel, instances: list[Any], field: str, status: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        v1_batch(PredictRequest(instances=instances), model, 10)
    assert (refused.value.field, refused.value.status) == (field, status)


@pytest.mark.parametrize(
    ("request_", "binary", "field", "status"),
    [
        (binary_request([1, 4], "FP32", 16), b"\0" * 12, "inputs[0].parameters.binary_data_size", 400),  # truncated
        # sizes do not add up
        (binary_request([1, 4], "FP32", 16), b"\0" * 20, "inputs[0].parameters.binary_data_size", 400),
        # not the shape's
        (binary_request([1, 4], "FP32", 32), b"\0" * 32, "inputs[0].parameters.binary_data_size", 422),
        (binary_request([1, 4], "BYTES", 16), b"\0" * 16, "inputs[0].datatype", 422),
        (binary_request([1, 4], "FP32", -1), b"", "inputs[0].parameters.binary_data_size", 422),
        (binary_request([1, 4], "FP32", True), b"\0", "inputs[0].parameters.binary_data_size", 422),
        (binary_request([2000, 4], "FP32", 32000), b"\0" * 32000, "inputs[0].shape", 413),  # before any value is read
        (binary_request([1, 3], "FP32", 12), b"\0" * 12, "inputs[0].shape", 422),
        (v2_request([1, 4], [1, 2, 3, 4]), b"\0" * 4, "inputs[0].parameters.binary_data_size", 400),  # bytes for nobody
        (
            InferenceRequest.model_validate(
                {
                    "inputs": [
                        {
                            "name": "x",
                            "shape": [1, 4],
                            "datatype": "FP32",
                            "data": [1, 2, 3, 4],
                            "parameters": {"binary_data_size": 16},
                        }
                    ]
                }
            ),
            b"\0" * 16,
            "inputs[0].data",
            422,
        ),
        (binary_request([1, 4], "FP32", 16), np.array([1, np.nan, 3, 4], "<f4").tobytes(), "inputs[0].data[1]", 422),
        (binary_request([1, 4], "INT8", 4), b"", "inputs[0].parameters.binary_data_size", 400),
        (
            InferenceRequest.model_validate({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32"}]}),
            b"",
            "inputs[0].data",
            422,
        ),
    ],
)
def test_binary_refusals_name_the_field(
    model: ServedModel, request_: InferenceRequest, binary: bytes, field: str, status: int
) -> None:
    with pytest.raises(InvalidInput) as refused:
        v2_batch(request_, model, 1000, memoryview(binary))
    assert (refused.value.field, refused.value.status) == (field, status)


JSON_OUT = {"binary_data": False}  # an output's own choice wins over the request's


@pytest.mark.parametrize(
    ("extra", "binary"),
    [
        ({}, False),
        ({"parameters": {"binary_data_output": True}}, True),
        ({"parameters": {"binary_data_output": True}, "outputs": [{"name": "predict"}]}, True),
        ({"parameters": {"binary_data_output": True}, "outputs": [{"name": "predict", "parameters": JSON_OUT}]}, False),
        ({"outputs": [{"name": "predict", "parameters": {"binary_data": True}}]}, True),
    ],
)
def test_outputs_are_binary_when_asked(model: ServedModel, extra: dict[str, Any], binary: bool) -> None:
    request = v2_request([2, 4], [1, 2, 3, 4, 5, 6, 7, 8], **extra)
    predictions = model.predict(v2_batch(request, model, 10))
    document, raw = v2_response(request, model, predictions)
    (output,) = document["outputs"]
    assert (raw is not None) == binary
    if raw is None:
        assert output["data"] == predictions.tolist()
        check_protocol(document, "inference_response")
    else:
        assert "data" not in output and output["parameters"] == {"binary_data_size": 16}
        assert np.frombuffer(raw, "<i8").tolist() == predictions.tolist()
