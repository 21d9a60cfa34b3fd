"""The text-analysis API on a real server: the three body forms, the options, and every bad-input case."""

from __future__ import annotations

import json

import pytest
import requests

from tests.support.server import Server, running_server

TEXT = "The cat and the hat. The CAT sat; don't stop rock-n-roll 42 42 42"


def _analyze(server: Server, query: str = "", **kwargs: object) -> requests.Response:
    return requests.post(f"{server.url}/api/v1/analyze{query}", timeout=10, **kwargs)  # type: ignore[arg-type]


def test_plain_text(server: Server) -> None:
    body = _analyze(server, "?top=3", data=TEXT.encode(), headers={"Content-Type": "text/plain"}).json()
    assert body["bytes"] == len(TEXT.encode())
    assert body["tokens"] == 14 and body["unique"] == 9
    # Highest count first, ties in alphabetical order.
    assert body["top"] == [{"word": "42", "count": 3}, {"word": "the", "count": 3}, {"word": "cat", "count": 2}]
    assert body["elapsed_ms"] >= 0


def test_json_and_multipart_agree_with_plain(server: Server) -> None:
    plain = _analyze(server, data=TEXT.encode(), headers={"Content-Type": "text/plain; charset=utf-8"}).json()
    as_json = _analyze(server, json={"text": TEXT}).json()
    as_file = _analyze(server, files={"file": ("t.txt", TEXT.encode(), "text/plain")}).json()
    for other in (as_json, as_file):
        assert {k: other[k] for k in ("bytes", "tokens", "unique", "top")} == {
            k: plain[k] for k in ("bytes", "tokens", "unique", "top")
        }


def test_options(server: Server) -> None:
    query = "?lowercase=false&min_length=3&stopwords=en&top=100"
    words = {w["word"] for w in _analyze(server, query, json={"text": TEXT}).json()["top"]}
    assert "The" not in words and "the" not in words  # a stop word, whatever its case
    assert {"CAT", "cat", "hat", "sat", "rock-n-roll", "don't"} <= words
    assert "42" not in words  # shorter than min_length


def test_tokenize_and_wordcount(server: Server) -> None:
    tokens = requests.post(f"{server.url}/api/v1/tokenize?limit=4", json={"text": TEXT}, timeout=10).json()
    assert tokens["tokens"] == ["the", "cat", "and", "the"] and tokens["total"] == 14 and tokens["truncated"]
    counts = requests.post(f"{server.url}/api/v1/wordcount?limit=2", json={"text": TEXT}, timeout=10).json()
    assert counts["counts"] == [{"word": "42", "count": 3}, {"word": "the", "count": 3}]
    assert counts["truncated"] and counts["unique"] == 9


def _assert_problem(response: requests.Response, status: int, code: str | None = None) -> dict[str, object]:
    code = code or {413: "payload_too_large", 404: "not_found", 405: "method_not_allowed"}.get(status)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"] == "about:blank"
    assert "Traceback" not in response.text
    if code:
        assert body["code"] == code
    return body


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": b"x", "headers": {"Content-Type": "application/xml"}}, 415, "unsupported_media_type"),
        ({"data": b"x"}, 415, "unsupported_media_type"),  # no content type at all
        ({"data": b"x", "headers": {"Content-Type": "text/plain; charset=latin-1"}}, 415, "unsupported_charset"),
        ({"data": b'{"text": ', "headers": {"Content-Type": "application/json"}}, 400, "malformed_json"),
        ({"json": {"text": 42}}, 422, "unprocessable"),
        ({"json": ["not", "an", "object"]}, 422, "unprocessable"),
        ({"data": b"caf\xe9 au lait", "headers": {"Content-Type": "text/plain"}}, 400, "invalid_utf8"),
        ({"data": b"ends mid-char \xc3", "headers": {"Content-Type": "text/plain"}}, 400, "invalid_utf8"),
        ({"files": {"other": ("t.txt", b"hi")}}, 400, "malformed_multipart"),
        (
            {"data": b"--xyz\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}},
            400,
            "malformed_multipart",
        ),
    ],
)
def test_bad_bodies(server: Server, kwargs: dict[str, object], status: int, code: str) -> None:
    _assert_problem(_analyze(server, **kwargs), status, code)


def test_invalid_utf8_reports_offset(server: Server) -> None:
    body = _assert_problem(_analyze(server, data=b"abc \xff", headers={"Content-Type": "text/plain"}), 400)
    assert body["offset"] == 4


@pytest.mark.parametrize(
    "query", ["?top=-1", "?top=1001", "?top=x", "?min_length=0", "?stopwords=fr", "?lowercase=maybe"]
)
def test_bad_query_parameters(server: Server, query: str) -> None:
    body = _assert_problem(_analyze(server, query, json={"text": "a"}), 422, "unprocessable")
    assert body["errors"]


def test_not_found_and_method_not_allowed(server: Server) -> None:
    _assert_problem(requests.get(server.url + "/nope", timeout=5), 404)
    response = requests.get(server.url + "/api/v1/analyze", timeout=5)
    _assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_upload_limit() -> None:
    with running_server({"FLASK_SVC_MAX_UPLOAD_BYTES": "1000"}) as srv:
        url = srv.url + "/api/v1/analyze"
        ok = requests.post(url, data=b"a " * 500, headers={"Content-Type": "text/plain"}, timeout=10)
        assert ok.status_code == 200
        _assert_problem(
            requests.post(url, data=b"a " * 500 + b"b", headers={"Content-Type": "text/plain"}, timeout=10), 413
        )
        exact_json = '{"text": "' + "a" * 988 + '"}'
        assert requests.post(url, data=exact_json, headers={"Content-Type": "application/json"}, timeout=10).ok

        def chunked_exact() -> object:
            for _ in range(10):
                yield b"word " * 20

        assert requests.post(url, data=chunked_exact(), headers={"Content-Type": "text/plain"}, timeout=10).ok

        def chunked() -> object:  # no Content-Length: the limit must hold while streaming
            for _ in range(20):
                yield b"word " * 20

        _assert_problem(requests.post(url, data=chunked(), headers={"Content-Type": "text/plain"}, timeout=10), 413)
        _assert_problem(requests.post(url, files={"file": ("t.txt", b"a " * 600)}, timeout=10), 413)
        _assert_problem(requests.post(url, json={"text": "a " * 600}, timeout=10), 413)
        metrics = requests.get(srv.metrics_url, timeout=5).text
    assert 'flask_svc_rejected_requests_total{reason="payload_too_large"} 4.0' in metrics


def test_problem_json_is_json(server: Server) -> None:
    response = requests.get(server.url + "/nope", timeout=5)
    assert json.loads(response.text)["instance"] == "/nope"
