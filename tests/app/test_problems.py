"""Every error is an RFC 9457 problem document: the app's own, Flask's 404/405, validation, and an unhandled one."""

from __future__ import annotations

from flask import Flask

from service.problems import PROBLEM_JSON, STATUS_CODES, Problem
from tests.app.conftest import make_app


def _app_with_views() -> Flask:
    app = make_app()

    def _raise(status: int) -> str:
        raise Problem(status, "custom_code", "what went wrong", headers={"Retry-After": "3"}, hint="try later")

    def _crash() -> str:
        raise RuntimeError("secret internals")

    app.add_url_rule("/raise/<int:status>", view_func=_raise)
    app.add_url_rule("/crash", view_func=_crash)

    return app


def test_a_raised_problem_keeps_its_code_headers_and_extras() -> None:
    response = _app_with_views().test_client().get("/raise/409")
    assert response.status_code == 409 and response.mimetype == PROBLEM_JSON
    assert response.headers["Retry-After"] == "3"
    assert response.get_json(force=True) == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "what went wrong",
        "code": "custom_code",
        "instance": "/raise/409",
        "hint": "try later",
    }


def test_an_unregistered_status_still_gets_a_title() -> None:
    body = _app_with_views().test_client().get("/raise/450").get_json(force=True)
    assert body["title"] == "Client Error" and body["status"] == 450


def test_an_unhandled_exception_is_a_500_problem_without_internals() -> None:
    response = _app_with_views().test_client().get("/crash")
    assert response.status_code == 500 and response.mimetype == PROBLEM_JSON
    assert response.get_json(force=True)["code"] == STATUS_CODES[500]
    assert "secret internals" not in response.text and "Traceback" not in response.text


def test_flask_errors_use_the_stable_codes(app: Flask) -> None:
    client = app.test_client()
    not_found = client.get("/nowhere")
    assert not_found.get_json(force=True)["code"] == STATUS_CODES[404]
    not_allowed = client.delete("/version")
    assert not_allowed.status_code == 405 and not_allowed.get_json(force=True)["code"] == STATUS_CODES[405]
    assert set(not_allowed.headers["Allow"].split(", ")) >= {"GET", "HEAD"}


def test_validation_errors_list_every_field(app: Flask) -> None:
    response = app.test_client().post("/api/v1/analyze?top=-1&min_length=0", json={"text": "a"})
    body = response.get_json(force=True)
    assert response.status_code == 422 and body["code"] == STATUS_CODES[422]
    assert {error["location"] for error in body["errors"]} == {"top", "min_length"}
    assert body["detail"] == "invalid query parameter(s): min_length, top"
