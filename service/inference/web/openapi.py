"""Model serving's part of the OpenAPI document: the request bodies the views read themselves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.inference.protocol import InferenceRequest, PredictRequest
from service.inference.web.views import ERRORS, PREDICT_PATH


def document(openapi: dict[str, Any]) -> None:
    """Add the request bodies to the OpenAPI document: the views read their JSON themselves (to name the field
    at fault in every refusal), so the generator cannot see them."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})

    def body(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        return {"required": True, "content": {"application/json": {"schema": ref}}}

    v2 = body(InferenceRequest)
    paths = openapi["paths"]
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        paths[path]["post"]["requestBody"] = v2
        paths[path]["post"]["responses"]["422"] = ERRORS[422]
    # flask-openapi3 reads "<name>:predict" as a converter and writes the path "/v1/models/{predict"; put it back.
    if "/v1/models/{predict" in paths:
        paths["/v1/models/{name}:predict"] = paths.pop("/v1/models/{predict")
    v1 = body(PredictRequest)
    for path in (PREDICT_PATH, "/v1/models/{name}:predict"):
        paths[path]["post"]["requestBody"] = v1
        paths[path]["post"]["responses"]["422"] = ERRORS[422]
