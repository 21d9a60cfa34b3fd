"""The text-analysis API: upload → tokenize → word count → result, one chunk at a time (see ``service.uploads``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from flask import Response, current_app, jsonify
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from opentelemetry.trace import Tracer, get_current_span

from service import uploads
from service.analysis import AnalysisOptions, StreamStats, VocabularyTooLarge, WordCount, analyze_chunks, first_words
from service.analysis.pipeline import InvalidText
from service.analysis.web.instruments import AnalysisInstruments
from service.analysis.web.schemas import (
    AnalyzeQuery,
    AnalyzeResult,
    TextOptions,
    TokenizeQuery,
    TokenizeResult,
    WordcountQuery,
    WordcountResult,
)
from service.core.current import current_settings
from service.core.schemas import problem_responses
from service.core.validation import validates_query
from service.metrics import feature_instruments
from service.names import ANALYZE, API_PREFIX, TOKENIZE, WORDCOUNT
from service.problems import Problem
from service.tracing import tracing_of
from service.uploads import TextBody

_ERRORS = problem_responses(400, 408, 413, 415, 422)
T = TypeVar("T")

bp = APIBlueprint("analysis", __name__, url_prefix=API_PREFIX, abp_tags=[Tag(name="analysis")])


def request_body_spec(media_types: tuple[str, ...] = uploads.MEDIA_TYPES) -> dict[str, Any]:
    """The OpenAPI requestBody shared by the text endpoints, from the model that validates JSON bodies."""
    content = {
        "text/plain": {"schema": {"type": "string"}},
        "application/json": {"schema": TextBody.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {uploads.FILE_PART: {"type": "string", "contentMediaType": "text/plain"}},
                "required": [uploads.FILE_PART],
            },
            "encoding": {uploads.FILE_PART: {"contentType": "text/plain"}},
        },
    }
    return {"required": True, "content": {media: spec for media, spec in content.items() if media in media_types}}


def _options(options: TextOptions) -> AnalysisOptions:
    return AnalysisOptions(lowercase=options.lowercase, min_length=options.min_length, stopwords=options.stopwords)


def _measured(
    endpoint: str, work: Callable[[], tuple[T, StreamStats]], attributes: Callable[[T], dict[str, int]]
) -> tuple[T, StreamStats, float]:
    """Run a pipeline over the body; record its metrics (bytes, duration, and the words ``attributes`` counts as
    ``analysis.tokens``) and, when tracing, a span per stage."""
    started_wall = time.time_ns()
    started = time.perf_counter()
    try:
        result, stats = work()
    except InvalidText as error:
        raise Problem(400, "invalid_utf8", str(error), offset=error.offset) from None
    except VocabularyTooLarge as error:
        raise Problem(413, "vocabulary_too_large", str(error), limit=error.limit) from None
    elapsed = time.perf_counter() - started
    sizes = attributes(result)
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # once, not through the proxy per read
    metrics = feature_instruments(app, AnalysisInstruments)
    metrics.analyzed_bytes.inc(stats.bytes)
    metrics.durations[endpoint].observe(elapsed)
    metrics.tokens.inc(sizes["analysis.tokens"])
    tracing = tracing_of(app)
    # Only under a sampled request span: a stage span under an unsampled one would not be sampled either (the
    # sampler decides per trace), so building it was work for nothing on most requests.
    if tracing is not None and get_current_span().is_recording():
        _stage_spans(tracing.tracer, stats, started_wall, sizes)
    return result, stats, round(elapsed * 1000, 3)


def _stage_spans(tracer: Tracer, stats: StreamStats, started_ns: int, sizes: dict[str, int]) -> None:
    """Tokenize and count run interleaved chunk by chunk; each span shows a stage's total busy time."""
    tokenized = started_ns + stats.tokenize_ns
    span = tracer.start_span(
        "analysis.tokenize",
        start_time=started_ns,
        attributes={"analysis.bytes": stats.bytes, "analysis.tokens": sizes["analysis.tokens"]},
    )
    span.end(end_time=tokenized)
    span = tracer.start_span("analysis.count", start_time=tokenized, attributes=sizes)
    span.end(end_time=tokenized + stats.consume_ns)


def count_words(
    endpoint: str, chunks: Iterable[bytes], options: AnalysisOptions
) -> tuple[WordCount, StreamStats, float]:
    """Every word's count, measured and traced under ``endpoint``; bad text becomes a 4xx ``Problem``. The API and
    the home page's form both count through here."""
    max_vocabulary = current_settings().max_vocabulary

    def work() -> tuple[WordCount, StreamStats]:
        analysis = analyze_chunks(chunks, options, max_vocabulary)
        return analysis.counts, analysis.stats

    def sizes(counts: WordCount) -> dict[str, int]:
        return {"analysis.tokens": counts.total, "analysis.unique": counts.unique}

    return _measured(endpoint, work, sizes)


def _body() -> Iterator[bytes]:
    return uploads.text_chunks(current_settings().max_upload_bytes)


def _frequencies(pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
    # Plain dicts: up to 100,000 entries, where a model object per entry would cost more than the counting.
    return [{"word": word, "count": count} for word, count in pairs]


@bp.post(f"/{ANALYZE}", responses={200: AnalyzeResult, **_ERRORS}, summary="Word statistics and the top words")
@validates_query
def analyze(query: AnalyzeQuery) -> Response:
    counts, stats, elapsed_ms = count_words(ANALYZE, _body(), _options(query))
    return jsonify(
        bytes=stats.bytes,
        tokens=counts.total,
        unique=counts.unique,
        top=_frequencies(counts.most_common(query.top)),
        elapsed_ms=elapsed_ms,
    )


@bp.post(
    f"/{WORDCOUNT}", responses={200: WordcountResult, **_ERRORS}, summary="Every word's count, most frequent first"
)
@validates_query
def wordcount(query: WordcountQuery) -> Response:
    counts, stats, elapsed_ms = count_words(WORDCOUNT, _body(), _options(query))
    return jsonify(
        bytes=stats.bytes,
        tokens=counts.total,
        unique=counts.unique,
        counts=_frequencies(counts.most_common(query.limit)),
        truncated=counts.unique > query.limit,
        elapsed_ms=elapsed_ms,
    )


@bp.post(f"/{TOKENIZE}", responses={200: TokenizeResult, **_ERRORS}, summary="The text's first words, in order")
@validates_query
def tokenize(query: TokenizeQuery) -> Response:
    body = _body()
    sample, stats, elapsed_ms = _measured(
        TOKENIZE,
        lambda: first_words(body, _options(query), query.limit),
        lambda sample: {"analysis.tokens": sample.total},
    )
    return jsonify(
        bytes=stats.bytes,
        total=sample.total,
        tokens=sample.words,
        truncated=sample.total > len(sample.words),
        elapsed_ms=elapsed_ms,
    )
