"""The text-analysis API in process: the three body forms, the options, every bad-input case, and what each request
leaves in the metrics."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service.names import ANALYSIS_ENDPOINTS, ANALYSIS_PATHS, ANALYZE_PATH, API_PREFIX, TOKENIZE, WORDCOUNT
from service.problems import PROBLEM_JSON
from tests.app.conftest import make_app, sample

TEXT = "The cat and the hat. The CAT sat; don't stop rock-n-roll 42 42 42"


def assert_problem(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.mimetype == PROBLEM_JSON
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["detail"] and body["type"] == "about:blank"
    assert body["code"] == code and "Traceback" not in response.text
    return body


def test_plain_text(client: FlaskClient) -> None:
    body = client.post(ANALYZE_PATH + "?top=3", data=TEXT.encode(), content_type="text/plain").get_json()
    assert body["bytes"] == len(TEXT.encode())
    assert body["tokens"] == 14 and body["unique"] == 9
    # Highest count first, ties in alphabetical order.
    assert body["top"] == [{"word": "42", "count": 3}, {"word": "the", "count": 3}, {"word": "cat", "count": 2}]
    assert body["elapsed_ms"] >= 0


def test_json_and_multipart_agree_with_plain(client: FlaskClient) -> None:
    keys = ("bytes", "tokens", "unique", "top")
    plain = client.post(ANALYZE_PATH, data=TEXT.encode(), content_type="text/plain; charset=utf-8").get_json()
    as_json = client.post(ANALYZE_PATH, json={"text": TEXT}).get_json()
    as_file = client.post(ANALYZE_PATH, data={"file": (_file(TEXT.encode()), "t.txt", "text/plain")}).get_json()
    for other in (as_json, as_file):
        assert {k: other[k] for k in keys} == {k: plain[k] for k in keys}


def _file(content: bytes) -> io.BytesIO:
    return io.BytesIO(content)


def test_options(client: FlaskClient) -> None:
    query = "?lowercase=false&min_length=3&stopwords=en&top=100"
    words = {w["word"] for w in client.post(ANALYZE_PATH + query, json={"text": TEXT}).get_json()["top"]}
    assert "The" not in words and "the" not in words  # a stop word, whatever its case
    assert {"CAT", "cat", "hat", "sat", "rock-n-roll", "don't"} <= words
    assert "42" not in words  # shorter than min_length


def test_tokenize_and_wordcount(client: FlaskClient) -> None:
    tokens = client.post(f"{API_PREFIX}/{TOKENIZE}?limit=4", json={"text": TEXT}).get_json()
    assert tokens["tokens"] == ["the", "cat", "and", "the"] and tokens["total"] == 14 and tokens["truncated"]
    counts = client.post(f"{API_PREFIX}/{WORDCOUNT}?limit=2", json={"text": TEXT}).get_json()
    assert counts["counts"] == [{"word": "42", "count": 3}, {"word": "the", "count": 3}]
    assert counts["truncated"] and counts["unique"] == 9


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": b"x", "content_type": "application/xml"}, 415, "unsupported_media_type"),
        ({"data": b"x"}, 415, "unsupported_media_type"),  # no content type at all
        ({"data": b"x", "content_type": "text/plain; charset=latin-1"}, 415, "unsupported_charset"),
        ({"data": b'{"text": ', "content_type": "application/json"}, 400, "malformed_json"),
        ({"json": {"text": 42}}, 422, "unprocessable"),
        ({"json": ["not", "an", "object"]}, 422, "unprocessable"),
        ({"data": b"caf\xe9 au lait", "content_type": "text/plain"}, 400, "invalid_utf8"),
        ({"data": b"ends mid-char \xc3", "content_type": "text/plain"}, 400, "invalid_utf8"),
        ({"data": b"--xyz\r\nbroken", "content_type": "multipart/form-data; boundary=xyz"}, 400, "malformed_multipart"),
        ({"data": b"--xyz--\r\n", "content_type": "multipart/form-data"}, 400, "malformed_multipart"),  # no boundary
    ],
)
def test_bad_bodies(client: FlaskClient, kwargs: dict[str, Any], status: int, code: str) -> None:
    assert_problem(client.post(ANALYZE_PATH, **kwargs), status, code)


def test_a_multipart_body_without_the_file_part(client: FlaskClient) -> None:
    response = client.post(ANALYZE_PATH, data={"other": (_file(b"hi"), "t.txt")})
    body = assert_problem(response, 400, "malformed_multipart")
    assert '"file"' in body["detail"]


def test_invalid_utf8_reports_offset(client: FlaskClient) -> None:
    body = assert_problem(client.post(ANALYZE_PATH, data=b"abc \xff", content_type="text/plain"), 400, "invalid_utf8")
    assert body["offset"] == 4


@pytest.mark.parametrize(
    "query", ["?top=-1", "?top=1001", "?top=x", "?min_length=0", "?stopwords=fr", "?lowercase=maybe"]
)
def test_bad_query_parameters(client: FlaskClient, query: str) -> None:
    body = assert_problem(client.post(ANALYZE_PATH + query, json={"text": "a"}), 422, "unprocessable")
    assert body["errors"] and all({"location", "message"} <= set(error) for error in body["errors"])


def test_not_found_and_method_not_allowed(client: FlaskClient) -> None:
    assert_problem(client.get("/nope"), 404, "not_found")
    response = client.get(ANALYZE_PATH)
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_upload_limit_holds_for_every_body_form() -> None:
    app = make_app(FLASK_SVC_MAX_UPLOAD_BYTES="1000")
    client = app.test_client()
    assert client.post(ANALYZE_PATH, data=b"a " * 500, content_type="text/plain").status_code == 200
    exact_json = '{"text": "' + "a" * 988 + '"}'
    assert client.post(ANALYZE_PATH, data=exact_json, content_type="application/json").status_code == 200
    too_large = [
        client.post(ANALYZE_PATH, data=b"a " * 500 + b"b", content_type="text/plain"),
        client.post(ANALYZE_PATH, data={"file": (_file(b"a " * 600), "t.txt")}),
        client.post(ANALYZE_PATH, json={"text": "a " * 600}),
    ]
    for response in too_large:
        assert_problem(response, 413, "payload_too_large")
    assert sample(app, "flask_svc_rejected_requests_total", {"reason": "payload_too_large"}) == 3


def test_too_many_distinct_words_is_413_with_the_limit() -> None:
    client = make_app(FLASK_SVC_MAX_VOCABULARY="5").test_client()
    body = assert_problem(
        client.post(ANALYZE_PATH, data=b"a b c d e f g", content_type="text/plain"), 413, "vocabulary_too_large"
    )
    assert body["limit"] == 5


def test_each_endpoint_records_its_pipeline_metrics() -> None:
    app = make_app()
    client = app.test_client()
    for path in ANALYSIS_PATHS:
        assert client.post(path, json={"text": "one two two"}).status_code == 200
    for endpoint in ANALYSIS_ENDPOINTS:
        assert sample(app, "flask_svc_analysis_duration_seconds_count", {"endpoint": endpoint}) == 1
    assert sample(app, "flask_svc_analyzed_bytes_total") == 3 * len(b"one two two")
    assert sample(app, "flask_svc_tokens_total") == 3 * 3
    # Bad input is counted by reason, and never reaches the pipeline's histogram.
    client.post(ANALYZE_PATH, data=b"\xff", content_type="text/plain")
    assert sample(app, "flask_svc_rejected_requests_total", {"reason": "bad_request"}) == 1
    assert sample(app, "flask_svc_analysis_duration_seconds_count", {"endpoint": "analyze"}) == 1


def test_problem_documents_name_the_instance(app: Flask) -> None:
    assert app.test_client().get("/nope").get_json(force=True)["instance"] == "/nope"
