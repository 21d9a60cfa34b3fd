"""service.uploads: the body as UTF-8 chunks whatever its form, read as it arrives, and every way it can be wrong."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from service import uploads
from service.names import CHUNK_BYTES
from service.problems import Problem
from service.requestctx import set_io_timeouts

LIMIT = 1000


@contextmanager
def body(app: Flask, data: Any = b"", content_type: str | None = "text/plain", **kwargs: Any) -> Iterator[None]:
    with app.test_request_context("/", method="POST", data=data, content_type=content_type, **kwargs):
        yield


def _problem(app: Flask, **kwargs: Any) -> Problem:
    with body(app, **kwargs), pytest.raises(Problem) as raised:
        list(uploads.text_chunks(LIMIT))
    return raised.value


def test_plain_text_is_read_in_chunks(app: Flask) -> None:
    text = b"word " * (CHUNK_BYTES // 2)  # 2.5 chunks
    with body(app, text):
        chunks = list(uploads.text_chunks(len(text)))
    assert b"".join(chunks) == text and max(map(len, chunks)) == CHUNK_BYTES and len(chunks) == 3


def test_json_text_is_sliced(app: Flask) -> None:
    text = "é" * CHUNK_BYTES
    with body(app, json.dumps({"text": text}), "application/json"):
        chunks = list(uploads.text_chunks(10 * CHUNK_BYTES))
    assert b"".join(chunks).decode() == text and len(chunks) == 1


def test_only_the_file_part_of_a_multipart_body_counts(app: Flask) -> None:
    data = {"note": "ignored", "file": (io.BytesIO(b"the text"), "t.txt", "text/plain; charset=utf-8")}
    with body(app, data, "multipart/form-data"):
        assert b"".join(uploads.text_chunks(LIMIT)) == b"the text"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": b"x" * (LIMIT + 1)}, 413, "payload_too_large"),
        ({"data": b"x", "content_type": "text/csv"}, 415, "unsupported_media_type"),
        ({"data": b"x", "content_type": "text/plain; charset=utf-16"}, 415, "unsupported_charset"),
        ({"data": b"--b\r\n", "content_type": "multipart/form-data"}, 400, "malformed_multipart"),
        ({"data": b"--b\r\nbroken", "content_type": "multipart/form-data; boundary=b"}, 400, "malformed_multipart"),
        ({"data": b"{", "content_type": "application/json"}, 400, "malformed_json"),
        ({"data": b'{"text": 1}', "content_type": "application/json"}, 422, "unprocessable"),
        ({"data": json.dumps({"text": "a" * LIMIT}), "content_type": "application/json"}, 413, "payload_too_large"),
    ],
)
def test_bad_bodies(app: Flask, kwargs: dict[str, Any], status: int, code: str) -> None:
    problem = _problem(app, **kwargs)
    assert (problem.status, problem.code) == (status, code)


def test_a_file_part_in_another_charset(app: Flask) -> None:
    data = {"file": (io.BytesIO(b"x"), "t.txt", "text/plain; charset=latin-1")}
    assert _problem(app, data=data, content_type="multipart/form-data").code == "unsupported_charset"


def test_a_body_shorter_than_announced(app: Flask) -> None:
    problem = _problem(app, environ_overrides={"wsgi.input": io.BytesIO(b"short"), "CONTENT_LENGTH": "50"})
    assert problem.code == "truncated_body" and "5 of 50" in problem.detail


def test_a_streamed_body_is_limited_as_it_arrives(app: Flask) -> None:
    # No Content-Length (a chunked upload): the limit is counted while reading.
    problem = _problem(app, input_stream=io.BytesIO(b"x" * (LIMIT + 1)))
    assert problem.status == 413


def test_a_stalled_body_is_408_and_closes_the_connection(app: Flask) -> None:
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        server_side.settimeout(0.05)  # the TimeoutError branch (requestctx sets the kernel's timeouts)
        client_side.sendall(b"first bytes, then nothing")
        with server_side.makefile("rb") as stream:
            problem = _problem(app, environ_overrides={"wsgi.input": stream, "CONTENT_LENGTH": "100"})
    assert (problem.status, problem.code) == (408, "request_timeout")
    assert problem.headers == {"Connection": "close"}


def test_a_body_stalled_past_the_kernel_timeout_is_408_too(app: Flask) -> None:
    """In gunicorn the socket stays blocking with SO_RCVTIMEO (requestctx), and its body reader recvs directly."""
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        set_io_timeouts(server_side, 0.05)
        client_side.sendall(b"first bytes, then nothing")
        stream = Body(LengthReader(SocketUnreader(server_side), 100))
        problem = _problem(app, environ_overrides={"wsgi.input": stream, "CONTENT_LENGTH": "100"})
    assert (problem.status, problem.code) == (408, "request_timeout")
    assert problem.headers == {"Connection": "close"}


def test_form_parts_keeps_the_first_of_each_name(app: Flask) -> None:
    data = {"text": ["one", "two"], "top": "5", "file": (io.BytesIO(b"filed"), "f.txt")}
    with body(app, data, "multipart/form-data"):
        parts = uploads.form_parts(LIMIT)
    assert parts == {"text": b"one", "top": b"5", "file": b"filed"}


def test_form_parts_wants_multipart_within_the_limit(app: Flask) -> None:
    with body(app, b"a=b", "application/x-www-form-urlencoded"), pytest.raises(Problem) as raised:
        uploads.form_parts(LIMIT)
    assert raised.value.status == 415
    with body(app, {"text": "x" * LIMIT}, "multipart/form-data"), pytest.raises(Problem) as raised:
        uploads.form_parts(LIMIT)
    assert raised.value.status == 413
