"""Inference requests and responses: the Open Inference Protocol (V2) REST form, with its binary tensor data
extension, and KServe's V1 form.

The pydantic models check the JSON's structure (and document it in /openapi.json); ``v2_batch`` and ``v1_batch`` check
the tensor against the model — datatype, shape, value count, numbers only, no NaN or infinity, within the datatype's
range, at most ``max_instances`` rows — and turn it into the matrix the model predicts on. The declared shape and
sizes are checked before any value is converted. Each refusal names the field at fault.

The binary extension: the request's first ``Inference-Header-Content-Length`` bytes are the JSON; the rest holds the
raw little-endian tensors, in input order, each input saying its size in ``parameters.binary_data_size`` instead of
giving ``data``. Outputs travel the same way when the request asks (``parameters.binary_data_output``, or an output's
``parameters.binary_data``). The values themselves, JSON or binary, are checked and converted in tensors.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from service.inference.model import BINARY_DTYPES, OUTPUT_NAME, ServedModel
from service.inference.tensors import NUMERIC_DATATYPES, binary_matrix, bytes_tensor, flatten, json_matrix
from service.inference.tensors import InvalidInput as InvalidInput  # the refusal callers catch, re-exported

# The inference body cap (docs/model-serving.md "Memory bounded by construction"): a fixed allowance for the
# envelope (id, names, shape, datatype, parameters) plus, per instance, its values at their longest in JSON. The
# longest FP64 in JSON is 24 characters (-2.2250738585072014e-308); 48 leaves room for the separator and a
# pretty-printer's newline and indentation. A binary tensor needs at most 8 bytes a value, so it always fits.
ENVELOPE_BYTES = 16 * 1024
JSON_BYTES_PER_VALUE = 48
JSON_BYTES_PER_INSTANCE = 16  # a row's brackets and separator when nested


def body_limit(features: int, max_instances: int) -> int:
    """The largest inference body a model with ``features`` inputs takes, ``max_instances`` rows at most."""
    return ENVELOPE_BYTES + max_instances * (features * JSON_BYTES_PER_VALUE + JSON_BYTES_PER_INSTANCE)


class _Strict(BaseModel):
    # Strict: "2" is not a dimension and true is not a number; unknown members are ignored, as the protocol allows.
    model_config = ConfigDict(strict=True)


class RequestInput(_Strict):
    name: str
    shape: list[int] = Field(description="[instances, features]")
    datatype: str = Field(description="A numeric datatype: " + ", ".join(NUMERIC_DATATYPES))
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = Field(
        None, description="Row-major values, flat or nested by row; absent when `parameters.binary_data_size` is set."
    )


class RequestOutput(_Strict):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(_Strict):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = Field(None, description="Absent when the output is binary (`binary_data_size`).")


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    properties: dict[str, str]


class ModelReady(BaseModel):
    name: str
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class PredictRequest(_Strict):
    """KServe's V1 form: one list of feature values per instance."""

    instances: list[list[Any]] = Field(min_length=1)


class PredictResponse(BaseModel):
    predictions: list[Any]


def _count(rows: int, max_instances: int, field: str) -> None:
    if rows < 1:
        raise InvalidInput(field, "at least one instance is needed")
    if rows > max_instances:
        raise InvalidInput(field, f"{rows} instances exceed the limit of {max_instances} per request", 413)


def _size_parameter(parameters: dict[str, Any] | None, name: str, field: str) -> int | None:
    value = (parameters or {}).get(name)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise InvalidInput(field, f"{value!r} is not a size in bytes")
    return value


def v2_batch(
    request: InferenceRequest, model: ServedModel, max_instances: int, binary: memoryview | None = None
) -> npt.NDArray[np.float64]:
    """The matrix to predict on; ``binary`` is what followed the JSON header (the binary extension), if anything."""
    if len(request.inputs) != 1:
        raise InvalidInput("inputs", f"the model takes exactly one input tensor, got {len(request.inputs)}")
    tensor = request.inputs[0]
    size = _size_parameter(tensor.parameters, "binary_data_size", "inputs[0].parameters.binary_data_size")
    received = 0 if binary is None else len(binary)
    if size is None and received:
        field = "inputs[0].parameters.binary_data_size"
        raise InvalidInput(field, f"{received} binary bytes follow the JSON, for no input", 400)
    if tensor.datatype not in NUMERIC_DATATYPES:
        raise InvalidInput("inputs[0].datatype", f"{tensor.datatype!r} is not one of {', '.join(NUMERIC_DATATYPES)}")
    if len(tensor.shape) != 2 or tensor.shape[1] != model.features:
        raise InvalidInput("inputs[0].shape", f"expected [N, {model.features}], got {tensor.shape}")
    rows = tensor.shape[0]
    _count(rows, max_instances, "inputs[0].shape")
    for index, output in enumerate(request.outputs or ()):
        if output.name != OUTPUT_NAME:
            raise InvalidInput(f"outputs[{index}].name", f"the model has one output, {OUTPUT_NAME!r}")
    where = "inputs[0].data[{}]".format
    if size is not None:
        if tensor.data is not None:
            raise InvalidInput("inputs[0].data", "give the values in data or in binary (binary_data_size), not both")
        return binary_matrix(tensor.shape, tensor.datatype, model.features, size, binary)
    if tensor.data is None:
        raise InvalidInput("inputs[0].data", "give the values in data, or in binary with parameters.binary_data_size")
    values = flatten(tensor.data)
    if len(values) != rows * model.features:
        raise InvalidInput(
            "inputs[0].data", f"holds {len(values)} values where shape {tensor.shape} needs {rows * model.features}"
        )
    return json_matrix(values, rows, model.features, tensor.datatype, where)


def _binary_wanted(request: InferenceRequest) -> bool:
    """An output's own ``binary_data`` decides; else the request's ``binary_data_output``; else JSON."""
    for output in request.outputs or ():
        if output.name == OUTPUT_NAME and (output.parameters or {}).get("binary_data") is not None:
            return (output.parameters or {}).get("binary_data") is True
    return (request.parameters or {}).get("binary_data_output") is True


def v2_response(
    request: InferenceRequest, model: ServedModel, predictions: npt.NDArray[Any]
) -> tuple[dict[str, Any], bytes | None]:
    """The response document and, when the request asked for binary outputs, the raw output that follows it."""
    response: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if request.id is not None:
        response["id"] = request.id
    output: dict[str, Any] = {"name": OUTPUT_NAME, "shape": [len(predictions)], "datatype": model.output_datatype}
    raw = None
    if _binary_wanted(request):
        dtype = BINARY_DTYPES.get(model.output_datatype)
        raw = bytes_tensor(predictions) if dtype is None else predictions.astype(dtype, copy=False).tobytes()
        output["parameters"] = {"binary_data_size": len(raw)}
    else:
        output["data"] = predictions.tolist()
    response["outputs"] = [output]
    return response, raw


def v1_batch(request: PredictRequest, model: ServedModel, max_instances: int) -> npt.NDArray[np.float64]:
    _count(len(request.instances), max_instances, "instances")
    for index, row in enumerate(request.instances):
        if len(row) != model.features:
            raise InvalidInput(f"instances[{index}]", f"holds {len(row)} values; the model takes {model.features}")
    values = [value for row in request.instances for value in row]
    features = model.features

    def where(index: int) -> str:
        return f"instances[{index // features}][{index % features}]"

    return json_matrix(values, len(request.instances), features, "FP64", where)
