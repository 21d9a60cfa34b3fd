"""The text-analysis API: upload → tokenize → word count → result, streamed in fixed-size chunks.

``text/plain`` bodies are read from the socket chunk by chunk; ``multipart/form-data`` files are spooled to disk by
Werkzeug and read back the same way; ``application/json`` is parsed whole (bounded by the upload limit).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from flask import Response, jsonify, request
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import ValidationError

from service import tracing
from service.analysis import AnalysisOptions, StreamStats, WordCount, analyze_chunks, first_words
from service.analysis.pipeline import InvalidText
from service.metrics import instruments
from service.models import (
    AnalyzeQuery,
    AnalyzeResult,
    TextBody,
    TextOptions,
    TokenizeQuery,
    TokenizeResult,
    WordcountQuery,
    WordcountResult,
    WordFrequency,
    problem_responses,
)
from service.problems import Problem

CHUNK_BYTES = 16 * 1024
TEXT_MEDIA_TYPES = ("text/plain", "application/json", "multipart/form-data")
_TEXT_CHARSETS = ("utf-8", "utf8", "us-ascii", "ascii")
_ERRORS = problem_responses(400, 413, 415, 422)
T = TypeVar("T")

bp = APIBlueprint("analysis", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="analysis")])


def request_body_spec() -> dict[str, Any]:
    """The OpenAPI requestBody shared by the three endpoints, from the model that validates JSON bodies."""
    return {
        "required": True,
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {"schema": TextBody.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "contentMediaType": "text/plain"}},
                    "required": ["file"],
                },
                "encoding": {"file": {"contentType": "text/plain"}},
            },
        },
    }


def _read(stream: Any) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk


def _json_text_chunks() -> Iterator[bytes]:
    try:
        body = TextBody.model_validate_json(request.get_data(cache=False))
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            raise Problem(400, "malformed_json", "the body is not valid JSON") from None
        raise Problem(422, "unprocessable", 'a JSON body must be an object with a string field "text"') from None
    yield from _encoded(body.text)


def _encoded(text: str) -> Iterator[bytes]:
    for start in range(0, len(text), CHUNK_BYTES):
        try:
            yield text[start : start + CHUNK_BYTES].encode("utf-8")
        except UnicodeEncodeError:
            raise Problem(400, "invalid_text", "the text holds an unpaired surrogate") from None


def body_chunks() -> Iterator[bytes]:
    """The uploaded text as UTF-8 byte chunks, whatever form it came in; 4xx problems for anything else."""
    mimetype = request.mimetype
    if mimetype == "text/plain":
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if charset not in _TEXT_CHARSETS:
            raise Problem(415, "unsupported_charset", f"charset {charset!r} is not supported; send UTF-8")
        return _read(request.stream)
    if mimetype == "application/json":
        return _json_text_chunks()
    if mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is not None:
            return _read(upload.stream)
        field = request.form.get("file")  # a part without a filename arrives as a form field
        if field is not None:
            return _encoded(field)
        raise Problem(400, "malformed_multipart", 'the multipart body has no "file" part')
    raise Problem(
        415,
        "unsupported_media_type",
        f"send the text as {', '.join(TEXT_MEDIA_TYPES)}; got {mimetype or 'no content type'}",
    )


def _measured(endpoint: str, work: Callable[[], tuple[T, StreamStats]]) -> tuple[T, StreamStats, float]:
    """Run a pipeline over the body; record its metrics and, when tracing, a span per stage."""
    started_wall = time.time_ns()
    started = time.perf_counter()
    try:
        result, stats = work()
    except InvalidText as error:
        raise Problem(400, "invalid_utf8", str(error), offset=error.offset) from None
    elapsed = time.perf_counter() - started
    metrics = instruments()
    metrics.analyzed_bytes.inc(stats.bytes)
    metrics.analysis_duration.labels(endpoint).observe(elapsed)
    if tracing.enabled():
        _stage_spans(stats, started_wall)
    return result, stats, round(elapsed * 1000, 3)


def _options(options: TextOptions) -> AnalysisOptions:
    return AnalysisOptions(lowercase=options.lowercase, min_length=options.min_length, stopwords=options.stopwords)


def _analysis(endpoint: str, options: TextOptions) -> tuple[WordCount, StreamStats, float]:
    def work() -> tuple[WordCount, StreamStats]:
        analysis = analyze_chunks(body_chunks(), _options(options))
        return analysis.counts, analysis.stats

    counts, stats, elapsed_ms = _measured(endpoint, work)
    instruments().tokens.inc(counts.total)
    return counts, stats, elapsed_ms


def _stage_spans(stats: StreamStats, started_ns: int) -> None:
    """Tokenize and consume run interleaved chunk by chunk; each span shows a stage's total busy time."""
    tracer = tracing.tracer()
    tokenized = started_ns + stats.tokenize_ns
    span = tracer.start_span("analysis.tokenize", start_time=started_ns, attributes={"analysis.bytes": stats.bytes})
    span.end(end_time=tokenized)
    span = tracer.start_span("analysis.count", start_time=tokenized)
    span.end(end_time=tokenized + stats.consume_ns)


def _frequencies(pairs: list[tuple[str, int]]) -> list[WordFrequency]:
    return [WordFrequency(word=word, count=count) for word, count in pairs]


@bp.post("/analyze", responses={200: AnalyzeResult, **_ERRORS}, summary="Word statistics and the top words")
def analyze(query: AnalyzeQuery) -> Response:
    counts, stats, elapsed_ms = _analysis("analyze", query)
    result = AnalyzeResult(
        bytes=stats.bytes,
        tokens=counts.total,
        unique=counts.unique,
        top=_frequencies(counts.most_common(query.top)),
        elapsed_ms=elapsed_ms,
    )
    return jsonify(result.model_dump())


@bp.post("/wordcount", responses={200: WordcountResult, **_ERRORS}, summary="Every word's count, most frequent first")
def wordcount(query: WordcountQuery) -> Response:
    counts, stats, elapsed_ms = _analysis("wordcount", query)
    result = WordcountResult(
        bytes=stats.bytes,
        tokens=counts.total,
        unique=counts.unique,
        counts=_frequencies(counts.most_common(query.limit)),
        truncated=counts.unique > query.limit,
        elapsed_ms=elapsed_ms,
    )
    return jsonify(result.model_dump())


@bp.post("/tokenize", responses={200: TokenizeResult, **_ERRORS}, summary="The text's first words, in order")
def tokenize(query: TokenizeQuery) -> Response:
    sample, stats, elapsed_ms = _measured("tokenize", lambda: first_words(body_chunks(), _options(query), query.limit))
    instruments().tokens.inc(sample.total)
    result = TokenizeResult(
        bytes=stats.bytes,
        total=sample.total,
        tokens=sample.words,
        truncated=sample.total > len(sample.words),
        elapsed_ms=elapsed_ms,
    )
    return jsonify(result.model_dump())
