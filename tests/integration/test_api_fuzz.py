"""Schemathesis against /openapi.json on a running server: no 5xx, no response outside the document.

Every check runs except `negative_data_rejection`: it sends a multipart `file` part "of the wrong JSON type" (the
number 0.0), but a multipart part is always text on the wire, so the service rightly analyses it. Rejection of bad
query parameters, which that check would also cover, is asserted in test_analysis_api.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.fuzz import run_schemathesis
from harness.server import running_server

MIN_CASES = 1000


@pytest.mark.slow
def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    with running_server({"GUNICORN_THREADS": "8", "LOG_LEVEL": "warning"}) as server:
        run_schemathesis(
            f"{server.url}/openapi.json",
            tmp_path,
            "--exclude-checks",
            "negative_data_rejection",
            seed=20261121,
            # 60 per operation (was 100): ~1,400 cases, every link of the stateful phase still followed, and the
            # coverage phase's boundary cases are the same whatever this number; ~0.7x the wall time.
            max_examples=60,
            min_cases=MIN_CASES,
        )
        server_errors = [r for r in server.json_logs() if r.get("level") in ("error", "critical")]
    assert not server_errors, server_errors[:3]
