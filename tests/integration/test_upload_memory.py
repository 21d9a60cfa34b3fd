"""A 10 MiB upload must not cost 10 MiB of memory: the body streams through in chunks.

The worker's peak resident set (VmHWM) is reset through /proc/<pid>/clear_refs, the upload is sent, and the new
peak is read back: the growth is what the request cost at its worst moment.
"""

from __future__ import annotations

import functools

import pytest
import requests

from harness.corpus import generate_text
from harness.proc import peak_kib, reset_peak
from harness.server import Server, running_server

UPLOAD_BYTES = 10 * 1024 * 1024


@functools.cache
def _text() -> bytes:
    return generate_text(UPLOAD_BYTES, seed=7, unicode_share=0.01)  # prose with some non-ASCII words


@pytest.fixture(scope="module")
def big_server() -> Server:
    with running_server({"FLASK_SVC_MAX_UPLOAD_BYTES": str(UPLOAD_BYTES + 64 * 1024)}) as server:
        yield server  # type: ignore[misc]


def _worker_pid(server: Server) -> int:
    (worker,) = server.workers()
    return worker.pid


def _post(url: str, form: str, body: bytes) -> requests.Response:
    if form == "multipart":
        return requests.post(url, files={"file": ("big.txt", body, "text/plain")}, timeout=60)
    return requests.post(url, data=body, headers={"Content-Type": "text/plain"}, timeout=60)


@pytest.mark.parametrize("form", ["text/plain", "multipart"])
def test_peak_memory_growth_is_a_fraction_of_the_upload(big_server: Server, form: str) -> None:
    body = _text()
    pid = _worker_pid(big_server)
    url = big_server.url + "/api/v1/analyze"
    # A first 2 MiB request of the same form pays the one-time costs (allocator arenas, imports) before measuring.
    assert _post(url, form, body[: 2 * 1024 * 1024]).status_code == 200
    reset_peak(pid)
    before = peak_kib(pid)
    response = _post(url, form, body)
    growth_kib = peak_kib(pid) - before
    assert response.status_code == 200, response.text
    assert response.json()["bytes"] == len(body)
    print(f"{form}: peak RSS growth {growth_kib} KiB for a {len(body) // 1024} KiB upload")
    # Measured growth is 1-4 MiB whatever the size (1 MiB to 30 MiB uploads): allocator churn, not the body.
    assert growth_kib * 1024 < len(body) / 2, f"peak grew {growth_kib} KiB"
