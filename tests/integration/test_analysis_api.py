"""The text-analysis API through real gunicorn: what the in-process tier (tests/app/analysis/test_views.py)
cannot show — a chunked body read from the socket and cut at the limit while it streams, and the rejections summed
by the master's metrics server from the worker's files."""

from __future__ import annotations

from collections.abc import Iterator

import requests

from harness.server import running_server
from service.names import ANALYZE_PATH


def _words(times: int) -> Iterator[bytes]:
    for _ in range(times):
        yield b"word " * 20


def test_the_upload_limit_holds_on_a_chunked_body_and_is_counted_by_the_master() -> None:
    with running_server({"FLASK_SVC_MAX_UPLOAD_BYTES": "1000"}) as server:
        url = server.url + ANALYZE_PATH
        text = {"Content-Type": "text/plain"}
        assert requests.post(url, data=_words(10), headers=text, timeout=10).ok  # exactly 1000 bytes
        for body in (_words(20), b"a " * 500 + b"b"):  # streamed without a length, and announced too large
            refused = requests.post(url, data=body, headers=text, timeout=10)
            assert refused.status_code == 413 and refused.headers["Content-Type"] == "application/problem+json"
            assert refused.json()["code"] == "payload_too_large"
        metrics = requests.get(server.metrics_url, timeout=5).text
    assert 'flask_svc_rejected_requests_total{reason="payload_too_large"} 2.0' in metrics
