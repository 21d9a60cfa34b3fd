"""`/metrics` line by line: the same families, series and counts as before the per-request metrics were made cheaper.

The golden file was written by the code before that change (``FLASK_SVC_WRITE_GOLDEN=1`` rewrites it): every line of
the exposition after a fixed mix of requests, with the values that the traffic fixes (counts) kept and those that
depend on timing or the machine (sums, buckets, process figures) replaced by ``*``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import requests

from harness.server import running_server

GOLDEN = Path(__file__).parent / "data" / "metrics_exposition.txt"
# Values fixed by the traffic; every other sample keeps its name and labels only.
EXACT = re.compile(
    r"^(flask_http_request_total|flask_http_request_exceptions_total|flask_svc_rejected_requests_total"
    r"|flask_svc_analyzed_bytes_total|flask_svc_tokens_total|flask_svc_worker_threads"
    r"|flask_svc_http_requests_in_flight|[a-z_]+_count)\b"
)
SAMPLE = re.compile(r"^(?P<series>[^ ]+) (?P<value>\S+)$")


def normalised(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if line.startswith("#") or match is None:
            lines.append(line)
            continue
        series = match["series"]
        series = re.sub(r'(version|commit|python_version)="[^"]*"', r'\1="*"', series)
        lines.append(f"{series} {match['value'] if EXACT.match(series) else '*'}")
    return sorted(lines)


def test_metrics_exposition_matches_the_golden_file() -> None:
    text_plain = {"Content-Type": "text/plain"}
    with running_server(env={"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2", "LOG_LEVEL": "warning"}) as server:
        session = requests.Session()
        # Both workers up (each adds its threads to the gauge) before the traffic, so the exposition is complete.
        deadline = time.monotonic() + 30
        while "flask_svc_worker_threads 4.0" not in session.get(server.metrics_url, timeout=5).text:
            assert time.monotonic() < deadline, "the second worker never came up"
            time.sleep(0.05)
        for _ in range(3):
            assert session.post(f"{server.url}/api/v1/analyze", data=b"a b b", headers=text_plain, timeout=5).ok
        assert session.post(f"{server.url}/api/v1/wordcount", data=b"x y", headers=text_plain, timeout=5).ok
        assert session.get(f"{server.url}/version", timeout=5).ok
        assert session.post(f"{server.url}/api/v1/analyze", data=b"<a/>", timeout=5).status_code == 415
        bad_query = f"{server.url}/api/v1/analyze?top=-1"
        assert session.post(bad_query, data=b"a", headers=text_plain, timeout=5).status_code == 422
        cross_site = {**text_plain, "Origin": "http://elsewhere.example"}
        refused = session.post(f"{server.url}/api/v1/tokenize", data=b"a", headers=cross_site, timeout=5)
        assert refused.status_code == 403
        assert session.get(f"{server.url}/no/such/path", timeout=5).status_code == 404
        assert session.get(f"{server.url}/livez", timeout=5).ok  # probes are not counted
        text = session.get(server.metrics_url, timeout=5).text
    got = normalised(text)
    if os.environ.get("FLASK_SVC_WRITE_GOLDEN"):
        GOLDEN.write_text("\n".join(got) + "\n")
    want = GOLDEN.read_text().splitlines()
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, f"missing: {missing}\nextra: {extra}"
    assert got == want
