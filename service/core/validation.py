"""A view's query string validated by its query model directly, instead of through flask-openapi3's generic path.

flask-openapi3 validates a view's ``query`` model on every request by walking the model's JSON schema and fields to
decide, field by field, how to read it from the query string (one value or a list, by name or by alias), then adds
the keys no field names. For a model whose fields are all single values read by their own names, what that builds
is the query string's first value for each key: ``validates_query`` checks that once, when the view is declared,
and then validates exactly that input with the same model, answering a failure through the app's same callback.
flask-openapi3 skips its own pass for a view marked as validating itself; the OpenAPI document, which it still
builds from the view's annotations, does not change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, get_type_hints

from flask import Response, abort, current_app, request
from pydantic import BaseModel, ValidationError

View = TypeVar("View", bound=Callable[..., Response])
# What flask-openapi3 looks for on a view that validates its own request (its ``validate_request`` decorator sets it).
_SELF_VALIDATING = "__delay_validate_request__"


def validates_query(view: View) -> View:
    """Give ``view`` its ``query`` argument validated from the query string (see the module's description)."""
    model = get_type_hints(view)["query"]
    _check_read_by_name(model)
    validate = model.model_validate

    @functools.wraps(view)
    def validated(**path_values: Any) -> Response:
        current = request._get_current_object()  # type: ignore[attr-defined]
        # The first value of every key, as flask-openapi3 reads them. Without a query string (most requests) that is
        # {}, and Werkzeug's parse of an empty one cost more than the validation.
        given = current.args.to_dict() if current.environ.get("QUERY_STRING") else {}
        try:
            query = validate(given)
        except ValidationError as error:
            abort(current_app.validation_error_callback(error))  # type: ignore[attr-defined]
        return view(query=query, **path_values)

    setattr(validated, _SELF_VALIDATING, True)
    return validated  # type: ignore[return-value]


def _check_read_by_name(model: type[BaseModel]) -> None:
    """Refuse, at import, a model flask-openapi3 would read otherwise: a list, a nullable type or an alias."""
    properties = model.model_json_schema().get("properties", {})
    for name, field in model.model_fields.items():
        schema = properties.get(name, {})
        if (
            field.alias
            or schema.get("type") in ("array", "null")
            or any(option.get("type") in ("array", "null") for option in schema.get("anyOf", ()))
        ):
            raise TypeError(f"{model.__name__}.{name}: not a single value read by its name; validate it otherwise")
