"""The floor of the stack: plain Flask on the same gunicorn settings (bench.targets), with no hooks, validation or
instrumentation. Its analyze route runs the service's pipeline on the body in the same 16 KiB chunks, so against
flask-svc only the plumbing differs (validation, request ids, problem documents, metrics, logs, tracing)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import IO

from flask import Flask, Response, jsonify, request

from service.analysis import AnalysisOptions, analyze_chunks
from service.names import ANALYZE_PATH, CHUNK_BYTES, LIVEZ, READYZ

app = Flask(__name__)


@app.get(LIVEZ)
@app.get(READYZ)
def livez() -> Response:
    return jsonify(status="ok")


def _read(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk


@app.post(ANALYZE_PATH)
def analyze() -> Response:
    started = time.perf_counter()
    analysis = analyze_chunks(_read(request.stream), AnalysisOptions())
    top = [{"word": word, "count": count} for word, count in analysis.counts.most_common(10)]
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    counts = analysis.counts
    return jsonify(
        bytes=analysis.stats.bytes, tokens=counts.total, unique=counts.unique, top=top, elapsed_ms=elapsed_ms
    )
