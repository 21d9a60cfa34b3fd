"""Per-request plumbing in process: request ids, the in-flight gauge, fault injection, rejected-request counts, the
read timeout on the server's socket and the fields the access line takes from the environ."""

from __future__ import annotations

import socket
import struct
import uuid

from flask import Flask, request

from service.names import ACCESS_ENVIRON_KEY, ANALYZE_PATH, LIFECYCLE_EXTENSION, LIVEZ, READYZ
from service.requestctx import new_request_id
from tests.app.conftest import make_app, sample


def test_request_id_is_echoed_when_plain_else_generated(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/version", headers={"X-Request-ID": "req-42"}).headers["X-Request-ID"] == "req-42"
    for bad in ("bad id\twith spaces", "x" * 129, ""):
        generated = client.get("/version", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert len(generated) == 32 and generated != bad


def test_the_access_fields_are_left_in_the_environ(app: Flask) -> None:
    with app.test_client() as client:  # keeps the request context after the response
        client.get("/api/v1/info", headers={"X-Request-ID": "acc-1"})
        fields = request.environ[ACCESS_ENVIRON_KEY]
        assert fields == {"route": "/api/v1/info", "request_id": "acc-1", "trace_id": None, "span_id": None}
        client.get("/no/such/page")
        assert request.environ[ACCESS_ENVIRON_KEY]["route"] == "unmatched"


def test_in_flight_counts_requests_but_not_probes() -> None:
    app = make_app()
    seen: list[float] = []

    def _observe() -> str:
        seen.append(sample(app, "flask_svc_http_requests_in_flight"))
        return "ok"

    app.add_url_rule("/observe", view_func=_observe)

    client = app.test_client()
    client.get("/observe")
    assert seen == [1.0]
    assert sample(app, "flask_svc_http_requests_in_flight") == 0  # back down after the request
    client.get(READYZ)
    client.get(LIVEZ)
    assert sample(app, "flask_svc_http_requests_in_flight") == 0


def test_rejections_are_counted_by_reason_except_on_probes() -> None:
    app = make_app()
    client = app.test_client()
    client.post(ANALYZE_PATH, data=b"x", content_type="application/xml")  # 415
    client.post(ANALYZE_PATH + "?top=x", json={"text": "a"})  # 422
    client.post(ANALYZE_PATH, data=b"\xff", content_type="text/plain")  # 400
    client.get("/nope")  # 404: not bad input, not counted
    assert sample(app, "flask_svc_rejected_requests_total", {"reason": "unsupported_media_type"}) == 1
    assert sample(app, "flask_svc_rejected_requests_total", {"reason": "unprocessable"}) == 1
    assert sample(app, "flask_svc_rejected_requests_total", {"reason": "bad_request"}) == 1
    assert sample(app, "flask_svc_rejected_requests_total", {"reason": "payload_too_large"}) == 0


def test_fault_injection_answers_500_but_spares_probes_and_the_page() -> None:
    app = make_app()
    app.extensions[LIFECYCLE_EXTENSION].fault = True
    client = app.test_client()
    failed = client.post(ANALYZE_PATH, json={"text": "a"})
    assert failed.status_code == 500 and failed.get_json(force=True)["code"] == "fault_injected"
    assert client.get(READYZ).status_code == 200
    assert client.get("/").status_code == 200
    assert client.get("/ui/home.css").status_code == 200


def test_the_server_socket_gets_the_read_timeout() -> None:
    app = make_app(FLASK_SVC_READ_TIMEOUT_SECONDS="2.5")
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        app.test_client().get("/version", environ_overrides={"gunicorn.socket": server_side})
        assert _kernel_timeouts(server_side) == (2.5, 2.5)


def _kernel_timeouts(sock: socket.socket) -> tuple[float, float]:
    """The socket's receive and send timeouts in seconds, as the kernel holds them (struct timeval)."""
    size = struct.calcsize("@ll")
    seconds = []
    for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        whole, micro = struct.unpack("@ll", sock.getsockopt(socket.SOL_SOCKET, option, size))
        seconds.append(whole + micro / 1_000_000)
    return seconds[0], seconds[1]


def test_generated_request_ids_are_random_version_4_uuids() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in list(ids)[:50]:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122
