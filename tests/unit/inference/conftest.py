"""The Iris model the inference unit tests predict with, and the V2 requests they build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.models import write_iris
from service.inference.loading import ModelSource, load
from service.inference.model import ServedModel
from service.inference.protocol import InferenceRequest


@pytest.fixture(scope="module")
def iris_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iris(tmp_path_factory.mktemp("model") / "iris.skops")


@pytest.fixture(scope="module")
def model(iris_file: Path) -> ServedModel:
    return load(ModelSource(str(iris_file)))


def v2_request(shape: list[int], data: list[Any], datatype: str = "FP32", **extra: Any) -> InferenceRequest:
    return InferenceRequest.model_validate(
        {"inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": data}], **extra}
    )


def binary_request(shape: list[int], datatype: str, size: int, **extra: Any) -> InferenceRequest:
    tensor = {"name": "input-0", "shape": shape, "datatype": datatype, "parameters": {"binary_data_size": size}}
    return InferenceRequest.model_validate({"inputs": [tensor], **extra})
