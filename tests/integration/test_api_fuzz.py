"""Schemathesis against /openapi.json on a running server: no 5xx, no response outside the document.

Every check runs except `negative_data_rejection`: it sends a multipart `file` part "of the wrong JSON type" (the
number 0.0), but a multipart part is always text on the wire, so the service rightly analyses it. Rejection of bad
query parameters, which that check would also cover, is asserted in test_analysis_api.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.server import running_server

MIN_CASES = 1000


@pytest.mark.slow
def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    with running_server({"GUNICORN_THREADS": "8", "LOG_LEVEL": "warning"}) as server:
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--exclude-checks",
                "negative_data_rejection",
                "--max-examples",
                "250",
                "--seed",
                "20261121",
                "--generation-database",
                "none",
                "--no-color",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        server_errors = [r for r in server.json_logs() if r.get("level") in ("error", "critical")]
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated, output[-2000:]
    assert int(generated.group(1)) >= MIN_CASES and generated.group(1) == generated.group(2), generated.group(0)
    assert not server_errors, server_errors[:3]
