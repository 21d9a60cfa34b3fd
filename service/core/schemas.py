"""The service's own request and response models (probes, build info, problems), shared by every feature.

The same pydantic models validate requests (flask-openapi3 for query strings, the views for JSON bodies) and
generate ``/openapi.json``, so the document and the behaviour cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_SCHEMAS: dict[tuple[Any, ...], dict[str, Any]] = {}


class QueryModel(BaseModel):
    """A query-string model. flask-openapi3 asks for the JSON schema on every request to read the field types; a
    class's schema never changes, so it is built once (this was a quarter of the CPU of a small analyze request)."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in _SCHEMAS:
            _SCHEMAS[key] = super().model_json_schema(*args, **kwargs)
        return copy.deepcopy(_SCHEMAS[key])


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str = Field(description="Stable machine-readable reason.")
    instance: str | None = None


class ModelIdentity(BaseModel):
    """The model a replica serves (FLASK_SVC_MODEL_PATH)."""

    name: str
    version: str
    sha256: str


class Health(BaseModel):
    status: Literal["ok", "starting", "draining", "disabled"]
    reason: str | None = None
    model: ModelIdentity | None = Field(None, description="The model loaded, when the service serves one.")


class Version(BaseModel):
    version: str
    commit: str
    build_date: str
    model: ModelIdentity | None = Field(None, description="The model served, when there is one.")


class Info(BaseModel):
    # KServe's V1 liveness check reads this member of GET / (its client's is_server_live).
    status: Literal["alive"] = Field(default="alive", description="Always alive: the process answers.")
    hostname: str
    pod: str
    namespace: str | None
    node: str | None
    python: str
    workers: int
    threads: int
    pid: int
    uptime_seconds: float
    # The build, as podinfo's / shows it, and the model served: /version's facts, so one call tells what runs where.
    version: str
    commit: str
    model: ModelIdentity | None = Field(None, description="The model served, when there is one.")


def problem_responses(*statuses: int) -> dict[str | int, Any]:
    """OpenAPI response entries for error statuses, all answered as problem+json."""
    schema = ProblemDetail.model_json_schema()
    return {
        status: {
            "description": "Problem details (RFC 9457)",
            "content": {"application/problem+json": {"schema": schema}},
        }
        for status in statuses
    }
