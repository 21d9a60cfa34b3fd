"""``validates_query`` answers every query string exactly as flask-openapi3's own validation does: the same model
on two routes of one app, one validated each way, asked the same queries."""

from __future__ import annotations

from typing import Literal

import pytest
from flask import Response, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.openapi import OpenAPI
from pydantic import BaseModel, Field

from service import problems
from service.core.schemas import QueryModel
from service.core.validation import validates_query


class Options(QueryModel):
    flag: bool = True
    size: int = Field(10, ge=1, le=100)
    kind: Literal["a", "b"] = "a"


def _app() -> OpenAPI:
    app = OpenAPI(__name__, validation_error_status="422", validation_error_callback=problems.validation_problem)
    problems.register_error_handlers(app)
    bp = APIBlueprint("both", __name__)

    @bp.get("/generic")
    def generic(query: Options) -> Response:
        return jsonify(query.model_dump())

    @bp.get("/direct")
    @validates_query
    def direct(query: Options) -> Response:
        return jsonify(query.model_dump())

    app.register_api(bp)
    return app


@pytest.mark.parametrize(
    "query",
    [
        "",
        "size=5&flag=false&kind=b",
        "size=0",
        "size=x&flag=maybe&kind=c",
        "size=5&size=x",
        "size=x&size=5",
        "other=1&size=7",
        "flag=&size=",
        "kind=b&kind=a&other=x&other=y",
    ],
)
def test_the_same_answer_as_flask_openapi3s_validation(query: str) -> None:
    client = _app().test_client()
    generic, direct = client.get(f"/generic?{query}"), client.get(f"/direct?{query}")
    assert (direct.status_code, direct.headers.get("Content-Type")) == (generic.status_code, generic.content_type)
    assert direct.get_json() | {"instance": None} == generic.get_json() | {"instance": None}  # only the path differs


def test_the_openapi_parameters_are_the_same() -> None:
    paths = _app().api_doc["paths"]
    assert paths["/direct"]["get"]["parameters"] == paths["/generic"]["get"]["parameters"]


class Listed(BaseModel):
    names: list[str] = []


class Aliased(BaseModel):
    size: int = Field(1, alias="n")


class Nullable(BaseModel):
    size: int | None = None


@pytest.mark.parametrize("model", [Listed, Aliased, Nullable])
def test_a_model_read_otherwise_is_refused_when_declared(model: type[BaseModel]) -> None:
    def view(query: BaseModel) -> Response:
        raise AssertionError

    view.__annotations__["query"] = model  # the model under test, not a name to resolve

    with pytest.raises(TypeError, match=f"{model.__name__}"):
        validates_query(view)
