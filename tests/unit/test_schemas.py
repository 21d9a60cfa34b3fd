"""The API schemas (service.core.schemas and the features'): the bounds the API documents are the ones it enforces,
and the cached schemas stay private."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.analysis.web.schemas import AnalyzeQuery, TokenizeQuery, WordcountQuery
from service.core.schemas import ProblemDetail, problem_responses


@pytest.mark.parametrize(
    ("model", "field", "low", "high"),
    [(AnalyzeQuery, "top", 0, 1000), (TokenizeQuery, "limit", 1, 10000), (WordcountQuery, "limit", 1, 100000)],
)
def test_bounds_are_documented_and_enforced(model: type[AnalyzeQuery], field: str, low: int, high: int) -> None:
    schema = model.model_json_schema()["properties"][field]
    assert (schema["minimum"], schema["maximum"]) == (low, high)
    model.model_validate({field: low})
    model.model_validate({field: high})
    for bad in (low - 1, high + 1):
        with pytest.raises(ValidationError):
            model.model_validate({field: bad})


def test_a_cached_schema_cannot_be_changed_by_its_caller() -> None:
    first = AnalyzeQuery.model_json_schema(mode="serialization")  # as the OpenAPI document asks: a copy of its own
    first["properties"].clear()
    assert AnalyzeQuery.model_json_schema(mode="serialization")["properties"]
    per_request = AnalyzeQuery.model_json_schema()  # as flask-openapi3 asks on every request: shared, read-only
    with pytest.raises(AttributeError):
        per_request["properties"].clear()
    with pytest.raises(TypeError):
        per_request["properties"]["top"]["maximum"] = 1
    assert AnalyzeQuery.model_json_schema()["properties"]["top"]["maximum"] == 1000
    assert AnalyzeQuery.model_json_schema() is per_request  # not copied per call


def test_problem_responses_describe_problem_json() -> None:
    entry = problem_responses(413)[413]
    schema = entry["content"]["application/problem+json"]["schema"]
    assert schema == ProblemDetail.model_json_schema()
    assert {"title", "status", "detail", "code"} <= set(schema["required"])
