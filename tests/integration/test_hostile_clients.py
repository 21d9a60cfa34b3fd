"""What clients that misbehave get: a 4xx problem document, a freed thread, bounded memory — never a 500."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.proc import peak_kib, reset_peak
from harness.server import Server, running_server


def _raw(
    server: Server, payload: bytes, half_close: bool = False, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are and parse the one response that comes back."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(v) for k, v in _headers(head).items() if k == "content-length"), None)
            if length is not None and len(body) >= length:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, _headers(head), body


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _assert_problem(status: int, headers: dict[str, str], body: bytes, expected: int, code: str) -> None:
    assert status == expected, body
    assert headers["content-type"] == "application/problem+json"
    document = json.loads(body)
    assert document["status"] == expected and document["code"] == code, document


@pytest.fixture(scope="module")
def strict_server() -> Server:
    env = {
        "FLASK_SVC_READ_TIMEOUT_SECONDS": "1",
        "FLASK_SVC_MAX_VOCABULARY": "1000",
        "FLASK_SVC_DEBUG_ENDPOINTS": "true",
    }
    with running_server(env) as server:
        yield server  # type: ignore[misc]


def test_stalled_uploads_get_408_and_free_their_threads(strict_server: Server) -> None:
    stalled = b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nabc"
    with ThreadPoolExecutor(6) as pool:  # more stalled clients than the 4 request threads
        futures = [pool.submit(_raw, strict_server, stalled) for _ in range(6)]
        time.sleep(0.3)
        started = time.monotonic()
        livez = requests.get(strict_server.url + "/livez", timeout=10)
        waited = time.monotonic() - started
        for future in futures:
            _assert_problem(*future.result(), expected=408, code="request_timeout")
    assert livez.status_code == 200
    assert waited < 5  # the probe waited at most about one read timeout, not forever


def test_clients_that_never_read_their_response_free_their_threads(strict_server: Server) -> None:
    """A response far larger than the socket buffers, to clients that never read it: a send that makes no progress
    for the read timeout gives up (SO_SNDTIMEO), so the request threads come back. Without a send timeout they stay
    blocked forever and the last request is never served."""
    body = b"x" * (8 * 1024 * 1024)
    head = f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"

    def never_reading_client() -> socket.socket:
        sock = socket.socket()
        sock.settimeout(20)  # the test's own guard, should the server never take the body
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        sock.connect(("127.0.0.1", strict_server.port))
        sock.sendall(head.encode() + body)
        return sock

    with ThreadPoolExecutor(6) as pool:  # more clients than the 4 request threads
        futures = [pool.submit(never_reading_client) for _ in range(6)]
        time.sleep(0.3)
        response = requests.post(strict_server.url + "/api/v1/analyze", json={"text": "still served"}, timeout=20)
        for future in futures:
            future.result().close()
    assert response.status_code == 200


def test_body_shorter_than_its_length_is_400(strict_server: Server) -> None:
    cut = b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nabc"
    _assert_problem(*_raw(strict_server, cut, half_close=True), expected=400, code="truncated_body")


def test_broken_chunked_encoding_is_400(strict_server: Server) -> None:
    broken = (
        b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    )
    status, headers, body = _raw(strict_server, broken)
    assert 400 <= status < 500 and headers["content-type"] == "application/problem+json", body


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"GARBAGE\r\n\r\n", 400),  # no method, path or version
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
    ],
)
def test_requests_gunicorn_rejects_are_problem_json_too(strict_server: Server, payload: bytes, expected: int) -> None:
    status, headers, body = _raw(strict_server, payload)
    assert status == expected
    assert headers["content-type"] == "application/problem+json" and json.loads(body)["status"] == expected


@pytest.mark.parametrize("path", ["/api/v1/analyze", "/api/v1/jobs"])
def test_a_body_refused_on_its_length_closes_the_connection(strict_server: Server, path: str) -> None:
    # Kept alive, the connection would hold a thread while the unread body (here 2 GiB announced) is drained.
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {2 << 30}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", strict_server.port), timeout=10) as sock:
        sock.sendall(head + b"the first bytes of the body")
        data = b""
        while chunk := sock.recv(65536):  # until the server closes: a kept-alive connection ends in a timeout
            data += chunk
    response_head, _, body = data.partition(b"\r\n\r\n")
    headers = _headers(response_head)
    _assert_problem(int(response_head.split(b" ", 2)[1]), headers, body, expected=413, code="payload_too_large")
    assert headers["connection"] == "close"
    assert requests.get(strict_server.url + "/livez", timeout=10).ok


def test_vocabulary_limit_is_413(strict_server: Server) -> None:
    text = " ".join(f"w{n}" for n in range(1500))
    response = requests.post(strict_server.url + "/api/v1/analyze", json={"text": text}, timeout=10)
    assert response.status_code == 413 and response.json()["code"] == "vocabulary_too_large"
    assert requests.post(strict_server.url + "/api/v1/tokenize", json={"text": text}, timeout=10).ok  # no vocabulary


def test_unhandled_exception_is_counted_logged_and_hidden(strict_server: Server) -> None:
    response = requests.get(strict_server.url + "/panic", timeout=5)
    assert response.status_code == 500 and response.json()["code"] == "internal_error"
    assert "panic requested" not in response.text and "Traceback" not in response.text
    metrics = requests.get(strict_server.metrics_url, timeout=5).text
    assert 'flask_http_request_exceptions_total{method="GET",status="500"} 1.0' in metrics
    errors = [r for r in strict_server.json_logs() if r.get("level") == "error"]
    assert any("panic requested" in str(r.get("exc_info")) for r in errors)


def test_unregistered_status_codes_work(strict_server: Server) -> None:
    response = requests.get(strict_server.url + "/status/450", timeout=5)
    assert response.status_code == 450 and response.json()["title"] == "Client Error"


def test_echo_cannot_become_a_page(strict_server: Server) -> None:
    response = requests.post(
        strict_server.url + "/echo", data=b"<script>1</script>", headers={"Content-Type": "text/html"}, timeout=5
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_multipart_part_without_filename_keeps_utf8_strict(strict_server: Server) -> None:
    url = strict_server.url + "/api/v1/analyze"
    response = requests.post(url, files={"file": (None, b"caf\xe9 ok")}, timeout=5)
    assert response.status_code == 400 and response.json()["code"] == "invalid_utf8"
    ok = requests.post(url, files={"file": (None, "café ok".encode())}, timeout=5).json()
    assert ok["tokens"] == 2


def test_distinct_words_cannot_exhaust_memory() -> None:
    """10 MiB of all-distinct words: refused at the vocabulary limit, with memory to match."""
    body = " ".join(f"w{n}" for n in range(1_300_000)).encode()[: 10 * 1024 * 1024]
    with running_server({"FLASK_SVC_MAX_UPLOAD_BYTES": str(11 * 1024 * 1024)}) as server:
        (worker,) = server.workers()
        requests.post(server.url + "/api/v1/analyze", data=b"warm up", headers={"Content-Type": "text/plain"})
        reset_peak(worker.pid)
        before = peak_kib(worker.pid)
        response = requests.post(
            server.url + "/api/v1/wordcount", data=body, headers={"Content-Type": "text/plain"}, timeout=60
        )
        growth_mib = (peak_kib(worker.pid) - before) / 1024
    assert response.status_code == 413 and response.json()["code"] == "vocabulary_too_large"
    print(f"peak growth {growth_mib:.1f} MiB for {len(body) >> 20} MiB of distinct words (limit 100,000)")
    assert growth_mib < 64, growth_mib  # without the limit: ~250 MiB
