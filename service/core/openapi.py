"""The app's class and its OpenAPI document.

flask-openapi3 generates the document from the blueprints; what it cannot see (request bodies a view reads itself,
the liveness answer that never reaches Flask) each part of the app adds with ``amend``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify
from flask.json.provider import DefaultJSONProvider
from flask_openapi3.openapi import OpenAPI
from werkzeug.sansio.response import Response as BaseResponse

from service.core.schemas import problem_responses

Amendment = Callable[[dict[str, Any]], None]
_AMENDMENTS = "flask_svc.openapi_amendments"  # app.extensions: (before the 422s are rewritten, after)


class CompactJSON(DefaultJSONProvider):
    """Flask's JSON, with the compact response form (every ``jsonify`` outside debug mode) encoded by one encoder
    made once: ``json.dumps`` builds a new one for every call that passes options, as Flask's always does. The same
    options, so the same bytes; any other form goes Flask's way."""

    sort_keys = False  # fields in model order read better

    def __init__(self, app: Flask) -> None:
        super().__init__(app)
        self._encode_compact = json.JSONEncoder(
            default=self.default, ensure_ascii=True, sort_keys=False, separators=(",", ":")
        ).encode

    def response(self, *args: Any, **kwargs: Any) -> BaseResponse:
        pretty = self.compact is False or (self.compact is None and self._app.debug)
        if pretty or not self.ensure_ascii or self.sort_keys:
            return super().response(*args, **kwargs)
        body = self._encode_compact(self._prepare_response_obj(args, kwargs))
        return self._app.response_class(f"{body}\n", mimetype=self.mimetype)


class ServiceApp(OpenAPI):
    """flask-openapi3's app, with Flask's ``ensure_sync`` answered from memory for plain functions.

    Flask asks it of every hook and view on every request, and each answer walks ``inspect.iscoroutinefunction``:
    with a handful of hooks that was several microseconds a request. A function's answer never changes."""

    json_provider_class = CompactJSON

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known_sync: set[Callable[..., Any]] = set()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if func in self._known_sync:
            return func
        wrapped: Callable[..., Any] = super().ensure_sync(func)
        if wrapped is func:  # a coroutine function gets a new wrapper each time, as Flask does
            self._known_sync.add(func)
        return wrapped


def amend(app: Flask, change: Amendment, *, own_errors: bool = False) -> None:
    """Have ``change`` edit the generated document, in the order added. ``own_errors``: after the 422s are rewritten
    as problem documents (for routes that answer their errors in another form)."""
    app.extensions.setdefault(_AMENDMENTS, ([], []))[own_errors].append(change)


def openapi_document(app: OpenAPI) -> Response:
    """The generated OpenAPI 3.1 document, with what each part of the app added."""
    document: dict[str, Any] = copy.deepcopy(app.api_doc)
    before, after = app.extensions.get(_AMENDMENTS, ([], []))
    for change in before:
        change(document)
    # flask-openapi3 documents its validation errors as a JSON array; ours are problem documents, and only
    # operations that take parameters or a body can produce one.
    unprocessable = problem_responses(422)[422]
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop(422, None)
            if operation.get("parameters") or operation.get("requestBody"):
                responses["422"] = unprocessable
            else:
                responses.pop("422", None)
    for change in after:
        change(document)
    return jsonify(document)
