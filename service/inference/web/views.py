"""Model serving over HTTP: the Open Inference Protocol (V2) endpoints and KServe's V1 routes (``/v1/models/<name>``,
``/v1/models/<name>:predict``, and ``/api/v1/predict`` for the model served).

Imported only when ``FLASK_SVC_MODEL_PATH`` is set (it pulls in numpy and scikit-learn). The model is loaded by
``load_into`` while the app is built, in each worker after fork, so /readyz turns 200 only once it can predict.
Errors are ``application/json``: the protocol's ``error`` member carries the whole reason (the clients show only it,
and only from a JSON body), beside the members of a problem document. A body without ``Content-Type`` is read as
JSON, as Triton and MLServer do (NVIDIA's client sends none).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from flask import Flask, Response, current_app, json, jsonify, request
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import Field, ValidationError

from service.config import Settings
from service.core.current import current_lifecycle, current_settings, current_tracing
from service.core.schemas import ProblemDetail, QueryModel
from service.inference.loading import ModelSource, load
from service.inference.model import ServedModel
from service.inference.protocol import (
    InferenceRequest,
    InferenceResponse,
    InvalidInput,
    ModelMetadata,
    ModelReady,
    PredictRequest,
    PredictResponse,
    ServerLive,
    ServerMetadata,
    ServerReady,
    body_limit,
    v1_batch,
    v2_batch,
    v2_response,
)
from service.inference.web import MODEL_EXTENSION
from service.inference.web.bodies import BINARY_HEADER, Body, checked_body, refusal
from service.inference.web.instruments import InferenceInstruments
from service.metrics import feature_instruments
from service.names import API_PREFIX
from service.problems import Problem, problem_document

log = logging.getLogger("service.handlers.inference")  # the logger its line has always had (log fields stay)
# The KServe V1 body on the model served, at the service's own API prefix (beside /v1/models/<name>:predict).
PREDICT_PATH = f"{API_PREFIX}/predict"


class InferenceError(ProblemDetail):
    """The protocol's error object (``error``: the reason) beside the members of a problem document."""

    error: str


_ERROR_SCHEMA = InferenceError.model_json_schema()
ERRORS: dict[str | int, Any] = {
    status: {"description": "The reason, in `error`", "content": {"application/json": {"schema": _ERROR_SCHEMA}}}
    for status in (400, 404, 413, 415, 422)
}

bp = APIBlueprint(
    "inference", __name__, abp_tags=[Tag(name="inference", description="Open Inference Protocol (V2) and V1")]
)


class ModelPath(QueryModel):  # its JSON schema built once: flask-openapi3 asks for it on every request
    name: str = Field(description="The model's name (see GET /v2/models/{name})")


class VersionPath(ModelPath):
    version: str


@bp.errorhandler(Problem)
def _protocol_error(error: Problem) -> Response:
    """The protocol's error form, for every refusal of these routes."""
    extra = {**error.extra, "error": error.detail}
    body = problem_document(error.status, error.detail, error.code, instance=request.path, **extra)
    response = Response(json.dumps(body), status=error.status, mimetype="application/json")
    response.headers.update(error.headers)
    return response


def load_into(app: Flask, settings: Settings) -> ServedModel:
    """Load the configured model and keep it on the app; called by its init_app before the app reports started."""
    model = load(
        ModelSource(
            path=settings.model_path,
            name=settings.model_name,
            version=settings.model_version,
            allow_pickle=settings.model_allow_pickle,
            trusted_types=settings.model_trusted_type_names,
        )
    )
    app.extensions[MODEL_EXTENSION] = model
    log.info("model %s version %s loaded (sha256 %s)", model.name, model.version, model.sha256)
    return model


def current_model(name: str, version: str | None = None) -> ServedModel:
    model: ServedModel = current_app.extensions[MODEL_EXTENSION]
    if name != model.name or (version is not None and version != model.version):
        wanted = f"{name} version {version}" if version is not None else name
        raise Problem(404, "model_not_found", f"no model {wanted}; this server serves {model.name}")
    return model


def max_body_bytes(model: ServedModel, settings: Settings) -> int:
    """The inference body cap: the setting, or derived from the model's feature count and the instance cap."""
    return settings.model_max_body_bytes or body_limit(model.features, settings.model_max_instances)


def _predict(
    model: ServedModel, schema: type[Body], to_batch: Callable[[Body, memoryview | None], npt.NDArray[np.float64]]
) -> tuple[Body, npt.NDArray[Any]]:
    """Read and check the body, predict, and record the outcome."""

    def checked() -> tuple[Body, npt.NDArray[np.float64]]:
        body, binary = checked_body(schema, max_body_bytes(model, current_settings()))
        return body, to_batch(body, binary)

    return _run(model, checked)


def _run(
    model: ServedModel, checked: Callable[[], tuple[Body, npt.NDArray[np.float64]]]
) -> tuple[Body, npt.NDArray[Any]]:
    """Check the request, predict, and record the outcome (a refused request counts as invalid): metrics for every
    request, a span when tracing."""
    metrics = feature_instruments(current_app, InferenceInstruments)
    started = time.perf_counter()
    try:
        body, batch = checked()
    except (InvalidInput, Problem) as error:
        metrics.inference_duration.labels(model.name, "invalid").observe(time.perf_counter() - started)
        if isinstance(error, Problem):
            raise
        raise Problem(error.status, "invalid_inference_request", str(error), field=error.field) from None
    metrics.inference_instances.labels(model.name).observe(len(batch))
    try:
        tracing = current_tracing()
        if tracing is not None:
            attributes: dict[str, str | int] = {
                "model.name": model.name,
                "model.version": model.version,
                "model.batch_size": len(batch),
            }
            with tracing.tracer.start_as_current_span("model.predict", attributes=attributes):
                predictions = model.predict(batch)
        else:
            predictions = model.predict(batch)
    except Exception:
        metrics.inference_duration.labels(model.name, "error").observe(time.perf_counter() - started)
        raise
    metrics.inference_duration.labels(model.name, "ok").observe(time.perf_counter() - started)
    return body, predictions


def _infer(model: ServedModel) -> Response:
    limit = current_settings().model_max_instances
    body, predictions = _predict(model, InferenceRequest, lambda body, binary: v2_batch(body, model, limit, binary))
    document, raw = v2_response(body, model, predictions)
    if raw is None:
        return jsonify(document)
    header = json.dumps(document).encode()
    response = Response(header + raw, mimetype="application/octet-stream")
    response.headers[BINARY_HEADER] = str(len(header))
    return response


@bp.post(
    "/v2/models/<name>/infer",
    responses={200: InferenceResponse, **ERRORS},
    summary="Inference (Open Inference Protocol): [N, features] in, N predictions out",
)
def infer(path: ModelPath) -> Response:
    return _infer(current_model(path.name))


@bp.post(
    "/v2/models/<name>/versions/<version>/infer",
    responses={200: InferenceResponse, **ERRORS},
    summary="Inference on a named version",
)
def infer_version(path: VersionPath) -> Response:
    return _infer(current_model(path.name, path.version))


@bp.get("/v2/models/<name>", responses={200: ModelMetadata, 404: ERRORS[404]}, summary="Model metadata")
def metadata(path: ModelPath) -> Response:
    return jsonify(current_model(path.name).metadata())


@bp.get(
    "/v2/models/<name>/versions/<version>",
    responses={200: ModelMetadata, 404: ERRORS[404]},
    summary="Model metadata for a named version",
)
def metadata_version(path: VersionPath) -> Response:
    return jsonify(current_model(path.name, path.version).metadata())


def _model_ready(model: ServedModel) -> tuple[Response, int]:
    ready = current_lifecycle().readiness()[0]
    return jsonify(ModelReady(name=model.name, ready=ready).model_dump()), 200 if ready else 503


@bp.get(
    "/v2/models/<name>/ready",
    responses={200: ModelReady, 503: ModelReady, 404: ERRORS[404]},
    summary="Model ready: loaded and the server not draining",
)
def model_ready(path: ModelPath) -> tuple[Response, int]:
    return _model_ready(current_model(path.name))


@bp.get(
    "/v2/models/<name>/versions/<version>/ready",
    responses={200: ModelReady, 503: ModelReady, 404: ERRORS[404]},
    summary="Model ready, for a named version",
)
def model_version_ready(path: VersionPath) -> tuple[Response, int]:
    return _model_ready(current_model(path.name, path.version))


@bp.get("/v2", responses={200: ServerMetadata}, summary="Server metadata (Open Inference Protocol)")
def server_metadata() -> Response:
    extensions = ["binary_tensor_data"]  # the binary tensor data extension, as Triton names it
    return jsonify(
        ServerMetadata(name="flask-svc", version=current_settings().version, extensions=extensions).model_dump()
    )


@bp.get("/v2/health/live", responses={200: ServerLive}, summary="Server live (Open Inference Protocol)")
def server_live() -> Response:
    return jsonify(ServerLive(live=True).model_dump())


@bp.get("/v2/health/ready", responses={200: ServerReady, 503: ServerReady}, summary="Server ready: the model loaded")
def server_ready() -> tuple[Response, int]:
    ready = current_lifecycle().readiness()[0]
    return jsonify(ServerReady(ready=ready).model_dump()), 200 if ready else 503


def served() -> ServedModel:
    served_model: ServedModel = current_app.extensions[MODEL_EXTENSION]
    return served_model


def predict_instances(instances: Any) -> list[Any]:
    """The home page's Predict form: rows checked and predicted as ``/api/v1/predict`` does them, counted in the
    same metrics; each refusal is a Problem naming the field."""
    model = served()

    def checked() -> tuple[PredictRequest, npt.NDArray[np.float64]]:
        try:
            body = PredictRequest.model_validate({"instances": instances})
        except ValidationError as error:
            raise refusal(error) from None
        return body, v1_batch(body, model, current_settings().model_max_instances)

    predictions: list[Any] = _run(model, checked)[1].tolist()
    return predictions


def _v1_predict(model: ServedModel) -> Response:
    limit = current_settings().model_max_instances
    _, predictions = _predict(model, PredictRequest, lambda body, _: v1_batch(body, model, limit))
    return jsonify(predictions=predictions.tolist())


@bp.post(
    PREDICT_PATH,
    responses={200: PredictResponse, **ERRORS},
    summary="Prediction, KServe V1 body on the model served: {instances: [[...], ...]} → {predictions: [...]}",
)
def predict() -> Response:
    return _v1_predict(served())


@bp.post(
    "/v1/models/<name>:predict",
    responses={200: PredictResponse, **ERRORS},
    summary="Prediction (KServe V1 protocol): {instances: [[...], ...]} → {predictions: [...]}",
)
def v1_model_predict(path: ModelPath) -> Response:
    return _v1_predict(current_model(path.name))


@bp.get(
    "/v1/models/<name>",
    responses={200: ModelReady, 503: ModelReady, 404: ERRORS[404]},
    summary="Model ready (KServe V1 protocol)",
)
def v1_model_ready(path: ModelPath) -> tuple[Response, int]:
    return _model_ready(current_model(path.name))
