"""Probes, logs and metrics where a real gunicorn process matters: liveness answered by the worker's loop, the
access line gunicorn writes, and the master's metrics server. Handler behaviour is in tests/app."""

from __future__ import annotations

import requests

from harness.server import Server


def test_liveness_and_alias(server: Server) -> None:
    for path in ("/livez", "/healthz"):
        response = requests.get(server.url + path, timeout=5)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert requests.head(server.url + path, timeout=5).status_code == 200
        refused = requests.post(server.url + path, timeout=5)
        assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD"
        assert refused.headers["Content-Type"] == "application/problem+json"


def test_version_reports_build_env() -> None:
    from harness.server import running_server

    env = {"FLASK_SVC_VERSION": "9.8.7", "FLASK_SVC_GIT_COMMIT": "abc123", "FLASK_SVC_BUILD_DATE": "2026-11-21"}
    with running_server(env) as srv:
        body = requests.get(srv.url + "/version", timeout=5).json()
        metrics = requests.get(srv.metrics_url, timeout=5).text
    assert body == {"version": "9.8.7", "commit": "abc123", "build_date": "2026-11-21"}
    # Without a model the model labels are empty (they carry the model's identity when one is served).
    assert 'flask_svc_build_info{commit="abc123",model="",model_sha256="",model_version="",python_version="' in metrics


def test_access_log_is_json_with_request_fields(server: Server) -> None:
    requests.get(server.url + "/version", headers={"X-Request-ID": "log-check-1"}, timeout=5)
    line = server.wait_for_log(lambda r: r.get("logger") == "gunicorn.access" and r.get("request_id") == "log-check-1")
    assert line["method"] == "GET" and line["path"] == "/version" and line["route"] == "/version"
    assert line["status"] == 200 and isinstance(line["duration_ms"], float)
    assert line["level"] == "info" and str(line["timestamp"]).endswith("Z")


def test_metrics_are_not_on_the_app_port(server: Server) -> None:
    assert requests.get(server.url + "/metrics", timeout=5).status_code == 404
    assert "flask_svc_build_info" in requests.get(server.metrics_url, timeout=5).text


def test_metrics_can_be_switched_off() -> None:
    import pytest

    from harness.server import running_server

    with running_server({"FLASK_SVC_METRICS": "false"}) as srv:
        assert requests.post(srv.url + "/api/v1/analyze", json={"text": "a b"}, timeout=5).ok
        with pytest.raises(requests.ConnectionError):
            requests.get(srv.metrics_url, timeout=2)


def test_probe_access_lines_are_hidden_at_info_level() -> None:
    from harness.server import running_server

    with running_server({"LOG_LEVEL": "info"}) as srv:
        requests.get(srv.url + "/livez", headers={"X-Request-ID": "probe-1"}, timeout=5)
        requests.get(srv.url + "/version", headers={"X-Request-ID": "plain-1"}, timeout=5)
        srv.stop()
        ids = {r.get("request_id") for r in srv.json_logs() if r.get("logger") == "gunicorn.access"}
    assert "plain-1" in ids and "probe-1" not in ids
