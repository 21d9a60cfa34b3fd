"""service.metrics in process: the RED metrics by route template, the series that exist from the start, and off."""

from __future__ import annotations

import platform

from prometheus_client import generate_latest

from service.metrics import OFF, REJECT_REASONS, SLOW_CLIENT_REASONS, SPAN_DROP_REASONS, instruments_of
from service.names import ANALYSIS_ENDPOINTS, LIVEZ, READYZ
from service.problems import STATUS_CODES
from tests.app.conftest import make_app, sample


def test_every_labelled_series_exists_at_zero_from_the_start() -> None:
    app = make_app(GUNICORN_THREADS="6", FLASK_SVC_VERSION="1.2.3", FLASK_SVC_GIT_COMMIT="abc")
    for reason in REJECT_REASONS.values():
        assert sample(app, "flask_svc_rejected_requests_total", {"reason": reason}) == 0
    for reason in SPAN_DROP_REASONS:
        assert sample(app, "flask_svc_otel_spans_dropped_total", {"reason": reason}) == 0
    for reason in SLOW_CLIENT_REASONS:
        assert sample(app, "flask_svc_slow_clients_closed_total", {"reason": reason}) == 0
    for endpoint in ANALYSIS_ENDPOINTS:
        text = generate_latest(instruments_of(app).registry).decode()  # type: ignore[arg-type]
        assert f'flask_svc_analysis_duration_seconds_count{{endpoint="{endpoint}"}} 0.0' in text
    assert sample(app, "flask_svc_worker_threads") == 6
    labels = {"version": "1.2.3", "commit": "abc", "python_version": platform.python_version()}
    labels |= {"model": "", "model_version": "", "model_sha256": ""}  # no model served
    assert sample(app, "flask_svc_build_info", labels) == 1


def test_reject_reasons_are_the_problem_codes() -> None:
    assert all(STATUS_CODES[status] == reason for status, reason in REJECT_REASONS.items())


def test_requests_are_counted_by_route_template_and_probes_are_not() -> None:
    app = make_app(FLASK_SVC_DEBUG_ENDPOINTS="true")
    client = app.test_client()
    for code in (201, 202):
        client.get(f"/status/{code}")
    client.get("/no/such/page")
    client.get(READYZ)
    client.get(LIVEZ)
    text = generate_latest(instruments_of(app).registry).decode()  # type: ignore[arg-type]
    counts = [line for line in text.splitlines() if line.startswith("flask_http_request_duration_seconds_count")]
    assert any('url_rule="/status/<int:code>"' in line and 'status="201"' in line for line in counts)
    assert any('url_rule="unmatched"' in line and 'status="404"' in line for line in counts)
    assert not any("readyz" in line or "livez" in line for line in counts)


def test_metrics_off_means_no_instruments_and_no_registry() -> None:
    app = make_app(FLASK_SVC_METRICS="false")
    assert instruments_of(app) is OFF and OFF.registry is None
    assert app.test_client().post("/api/v1/analyze", json={"text": "a"}).status_code == 200


def test_an_exception_no_handler_answers_is_a_500_counted_once_and_in_the_exceptions_counter() -> None:
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as under gunicorn: Flask answers 500 instead of raising

    def _broken() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/broken", view_func=_broken)
    assert app.test_client().get("/broken").status_code == 500
    labels = {"method": "GET", "status": "500"}
    assert sample(app, "flask_http_request_total", labels) == 1
    assert sample(app, "flask_http_request_exceptions_total", labels) == 1
    route = {**labels, "url_rule": "/broken"}
    assert sample(app, "flask_http_request_duration_seconds_count", route) == 1
