"""service.tracing_otlp's encoder writes the bytes upstream's OTLP exporter writes: real SDK spans of every shape
(kinds, parents local and remote, trace state, events, links, limits hit, every attribute type, several resources
and scopes in one batch) encoded both ways and compared byte for byte. The server and stage spans of real requests
are compared in tests/app/test_tracing.py; export over a real socket in tests/app and tests/integration."""

from __future__ import annotations

import gc
import importlib.metadata
import tracemalloc
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from service import tracing_otlp
from service.tracing_otlp import SpanEncoder

REMOTE = SpanContext(
    0x4BF92F3577B34DA6A3CE929D0E0E4736,
    0x00F067AA0BA902B7,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "v1"), ("other", "x")]),
)
EVERY_TYPE = {
    "text": "POST",
    "empty text": "",
    "non-ascii": "Zürich 東京",
    "true": True,
    "false": False,
    "zero": 0,
    "one": 1,
    "negative": -5,
    "large": 2**62,
    "float": 1.25,
    "float zero": 0.0,
    "negative zero": -0.0,
    "texts": ("a", "", "b"),
    "ints": (1, -2),
    "bools": (True, False),
    "floats": (0.5,),
    "empty tuple": (),
}


def upstream(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializePartialToString()


@pytest.fixture
def finished() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


def _provider(exporter: InMemorySpanExporter, resource: Resource, **limits: int) -> TracerProvider:
    provider = TracerProvider(resource=resource, span_limits=SpanLimits(**limits), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _spans_of_every_shape(finished: InMemorySpanExporter) -> list[ReadableSpan]:
    resource = Resource({"service.name": "flask-svc", "service.instance": 3, "weight": 1.5}, "https://schema/r")
    limited = _provider(finished, resource, max_span_attributes=20, max_events=2, max_links=1, max_event_attributes=2)
    scoped = limited.get_tracer("scoped", "1.2", schema_url="https://schema/s", attributes={"scope.kind": "test"})
    plain = limited.get_tracer("plain")
    caller = trace.set_span_in_context(trace.NonRecordingSpan(REMOTE))
    links = [Link(REMOTE, {"link.n": 1}), Link(SpanContext(1, 2, is_remote=False), None)]
    with scoped.start_as_current_span("root é", caller, SpanKind.SERVER, EVERY_TYPE, links) as root:
        root.add_event("first", {"n": 1})
        root.add_event("bare")
        root.add_event("over the limit", {"a": 1, "b": 2, "c": 3})
        root.set_status(Status(StatusCode.ERROR, "went wrong"))
        with plain.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.OK))
            for index in range(25):  # five over the limit: dropped attributes counted
                child.set_attribute(f"attribute.{index}", index)
        for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
            scoped.start_span(f"kind {kind.name}", kind=kind).end()
        plain.start_span("").end()
        with pytest.raises(ValueError), plain.start_as_current_span("raises"):
            raise ValueError("boom")
    _provider(finished, Resource({})).get_tracer("elsewhere").start_span("another resource").end()
    return list(finished.get_finished_spans())


def test_every_shape_of_span_is_encoded_as_upstream_encodes_it(finished: InMemorySpanExporter) -> None:
    spans = _spans_of_every_shape(finished)
    assert len(spans) == 8
    encoder = SpanEncoder()
    assert encoder.encode(spans) == upstream(spans)
    assert encoder.encode(spans) == upstream(spans), "the second time, from the caches"
    for span in spans:  # each alone too: another grouping
        assert SpanEncoder().encode([span]) == upstream([span]), span.name
    assert SpanEncoder().encode([]) == upstream([]) == b""


def test_values_that_compare_equal_keep_their_own_bytes(finished: InMemorySpanExporter) -> None:
    """The cache holds strings and ints only, by value: ``True`` is not ``1``, ``-0.0`` is not ``0.0``."""
    tracer = _provider(finished, Resource({})).get_tracer("t")
    for value in (1, True, 0.0, -0.0, 1.0, "1", 0, False):
        tracer.start_span("same key", attributes={"key": value}).end()
    spans = list(finished.get_finished_spans())
    assert SpanEncoder().encode(spans) == upstream(spans)


def test_a_value_that_cannot_be_encoded_is_left_out_as_upstream_leaves_it(finished: InMemorySpanExporter) -> None:
    tracer = _provider(finished, Resource({})).get_tracer("t")
    tracer.start_span("out of range", attributes={"before": 1, "too large": 2**64, "after": "kept"}).end()
    spans = list(finished.get_finished_spans())
    assert SpanEncoder().encode(spans) == upstream(spans)


def test_the_caches_stay_bounded(finished: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing_otlp, "_CACHE_LIMIT", 8)
    tracer = _provider(finished, Resource({})).get_tracer("t")
    for index in range(30):
        tracer.start_span(f"span {index}", attributes={"port": 40000 + index, "path": f"/{index}"}).end()
    spans = list(finished.get_finished_spans())
    encoder = SpanEncoder()
    assert encoder.encode(spans) == upstream(spans)
    assert len(encoder._attributes) <= 8 and len(encoder._names) <= 8


# The most an encoder keeps (its caches, encoded bytes and the values they are keyed by), the figure
# service.tracing_otlp's comment states.
RETAINED_LIMIT = 1024 * 1024


def test_what_the_encoder_keeps_stays_bounded_whatever_clients_send(finished: InMemorySpanExporter) -> None:
    """Distinct long user agents and queries, error descriptions carrying messages, and as many distinct short
    values and names as fill the caches: the memory still held once the spans are gone stays under the bound."""
    tracer = _provider(finished, Resource({})).get_tracer("t")
    encoder = SpanEncoder()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for batch in range(30):
            for index in range(batch * 100, batch * 100 + 100):
                attributes = {
                    "user_agent.original": f"agent {index} " + "x" * 8000,
                    "url.query": f"q={index}&" + "y" * 4000,
                    "url.path": f"/{index:060d}",
                    "client.port": 1024 + index,
                }
                with tracer.start_as_current_span(f"GET /{index:060d}", attributes=attributes) as span:
                    span.set_status(Status(StatusCode.ERROR, f"KeyError: 'user {index}' not in /data/{index}"))
            spans = list(finished.get_finished_spans())
            encoder.encode(spans)
            finished.clear()
            del spans
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < RETAINED_LIMIT, f"{retained} bytes kept after 3,000 spans"


def test_short_values_and_statuses_without_description_are_encoded_once() -> None:
    """What repeats is still cached (the speed the caches are for); a status with a description is not kept."""
    finished = InMemorySpanExporter()
    tracer = _provider(finished, Resource({})).get_tracer("t")
    for description in ("one", "two", None):
        with tracer.start_as_current_span("GET /items", attributes={"http.request.method": "GET"}) as span:
            span.set_status(Status(StatusCode.ERROR, description))
    spans = list(finished.get_finished_spans())
    encoder = SpanEncoder()
    assert encoder.encode(spans) == upstream(spans)
    assert list(encoder._attributes) == [("http.request.method", "GET")]
    assert list(encoder._names) == ["GET /items"] and list(encoder._statuses) == [StatusCode.ERROR]


def test_the_upstream_exporter_is_the_release_export_was_written_against() -> None:
    """OtlpHttpExporter.export repeats upstream's export() around the encoding and uses its private attributes."""
    installed = importlib.metadata.version("opentelemetry-exporter-otlp-proto-http")
    assert installed == tracing_otlp.UPSTREAM_EXPORTER_VERSION, (
        f"opentelemetry-exporter-otlp-proto-http is {installed}, OtlpHttpExporter.export follows "
        f"{tracing_otlp.UPSTREAM_EXPORTER_VERSION}: re-check it against upstream's OTLPSpanExporter.export (shutdown "
        "check, metrics, size limit, client call) and the private attributes it reads, then update the version"
    )
    exporter = OTLPSpanExporter()
    try:
        for name in ("_shutdown", "_metrics", "_client", "_max_request_size"):
            assert hasattr(exporter, name), f"upstream's exporter has no {name}: re-check OtlpHttpExporter.export"
        assert callable(exporter._client.export) and callable(exporter._metrics.export_operation)
    finally:
        exporter.shutdown()
