"""The worker loop's reading of request heads: when a head is complete, and which ones it answers itself."""

from __future__ import annotations

import pytest

from service.server.httphead import read_head


@pytest.mark.parametrize(
    "partial",
    [
        b"",
        b"GET /livez HTTP/1.1",
        b"GET /livez HTTP/1.1\r\nHost: x\r\n",
        b"GET /livez HTTP/1.1\r\nHost: x\r\n\r",
        b"\r\n\r\n",
    ],
)
def test_incomplete_heads_are_none(partial: bytes) -> None:
    assert read_head(partial) is None


def test_a_complete_head_and_what_follows_it() -> None:
    first = b"\r\nGET /livez?verbose=1 HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n"
    head = read_head(bytearray(first + b"GET /readyz HTTP/1.1\r\n"))
    assert head is not None
    assert (head.method, head.target, head.version, head.size) == ("GET", "/livez", "HTTP/1.1", len(first))
    assert head.keep_alive and head.is_liveness and not head.has_body


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    ],
)
def test_keep_alive_follows_the_version_and_connection_header(head: bytes, keep_alive: bool) -> None:
    parsed = read_head(head)
    assert parsed is not None and parsed.keep_alive is keep_alive


@pytest.mark.parametrize(
    "head",
    [
        b"POST /livez HTTP/1.1\r\nHost: x\r\n\r\n",  # 405 comes from the application
        b"GET /livez HTTP/1.1\r\nContent-Length: 3\r\n\r\n",  # a body to read: a thread's job
        b"GET /livez HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /livez/x HTTP/1.1\r\n\r\n",
        b"GET http://x/livez HTTP/1.1\r\n\r\n",  # absolute form: left to the parser
        b"GET /livez HTTP/2.0\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nno colon here\r\n\r\n",  # malformed: gunicorn answers 400
        b"GET /livez HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET  /livez HTTP/1.1\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",  # beyond gunicorn's limits: its 431
        b"GET /livez HTTP/1.1\r\n" + b"A: b\r\n" * 101 + b"\r\n",
    ],
)
def test_only_plain_well_formed_probes_are_answered_by_the_loop(head: bytes) -> None:
    parsed = read_head(head)
    assert parsed is not None and not parsed.is_liveness


@pytest.mark.parametrize("head", [b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", b"HEAD /healthz HTTP/1.0\r\n\r\n"])
def test_probes_the_loop_answers(head: bytes) -> None:
    parsed = read_head(head)
    assert parsed is not None and parsed.is_liveness


def test_for_the_loop_only_a_probe_heads_fields_are_read() -> None:
    head = b"POST /api/v1/analyze?top=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    parsed = read_head(head, probes_only=True)
    assert parsed is not None and parsed.size == len(head) - 3 and not parsed.is_liveness
    assert (parsed.method, parsed.target, parsed.headers) == ("POST", "/api/v1/analyze", {})
    probe = read_head(b"GET /livez?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", probes_only=True)
    assert probe is not None and probe.is_liveness and probe.headers == {"host": "x"}
    assert read_head(head[:20], probes_only=True) is None
