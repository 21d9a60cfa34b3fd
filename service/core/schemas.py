"""The service's own request and response models (probes, build info, problems), shared by every feature.

The same pydantic models validate requests (flask-openapi3 for query strings, the views for JSON bodies) and
generate ``/openapi.json``, so the document and the behaviour cannot drift apart.
"""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

_SCHEMAS: dict[tuple[Any, ...], Any] = {}  # a dict, or a read-only view of one (see QueryModel)


class QueryModel(BaseModel):
    """A query-string model. flask-openapi3 asks for the JSON schema on every request to read the field types; a
    class's schema never changes, so it is built once (this was a quarter of the CPU of a small analyze request).
    That per-request call (no arguments) only reads it: it gets a read-only view, not a deep copy (the copy was a
    third of the validation's cost). Calls with arguments — the OpenAPI document's, which edits what it gets — get a
    copy of their own."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in _SCHEMAS:
            schema = super().model_json_schema(*args, **kwargs)
            _SCHEMAS[key] = schema if args or kwargs else _read_only(schema)
        if args or kwargs:
            return copy.deepcopy(_SCHEMAS[key])
        # A Mapping, read like the dict pydantic returns; any attempt to change it raises.
        return cast("dict[str, Any]", _SCHEMAS[key])


def _read_only(value: Any) -> Any:
    """``value`` with every dict a read-only mapping and every list a tuple."""
    if isinstance(value, dict):
        return MappingProxyType({key: _read_only(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_read_only(item) for item in value)
    return value


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
