"""service.tracing_sdk's ChildSpans starts a child of a sampled local span without the SDK's generic path: the span
it makes must be the SDK's own, field for field, and every other span must go the SDK's way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, Span, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, SpanContext, Status, TraceFlags, TraceState

from service.tracing_otlp import SpanEncoder
from service.tracing_sdk import ChildSpans


class CountedIds(RandomIdGenerator):
    """Span ids 1, 2, 3 … from ``next_span_id``: the SDK's span and the short way's get the same id."""

    next_span_id = 1

    def generate_span_id(self) -> int:
        self.next_span_id += 1
        return self.next_span_id - 1


class SdkStarts:
    """Counts spans started through the SDK tracer's own ``start_span``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = Tracer.start_span

        def counted(tracer: Tracer, *args: Any, **kwargs: Any) -> trace.Span:
            self.count += 1
            return original(tracer, *args, **kwargs)

        monkeypatch.setattr(Tracer, "start_span", counted)


@pytest.fixture
def finished() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


def _tracers(finished: InMemorySpanExporter, sampler: Sampler = ALWAYS_ON) -> tuple[Tracer, ChildSpans, CountedIds]:
    ids = CountedIds()
    provider = TracerProvider(sampler=sampler, id_generator=ids, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(finished))
    sdk = provider.get_tracer("service")
    assert isinstance(sdk, Tracer)
    return sdk, ChildSpans(provider.get_tracer("service")), ids


def _fields(span: Span) -> dict[str, Any]:
    """Every field of the span, its containers by content (and their limits), its lock by type (events the only
    entries the tests put in a list)."""
    fields: dict[str, Any] = {}
    for key, value in vars(span).items():
        if isinstance(value, BoundedAttributes):
            value = (dict(value), value.maxlen, value.dropped, value.max_value_len, value._immutable)
        elif isinstance(value, BoundedList):
            value = ([(e.name, e.timestamp, dict(e.attributes or {})) for e in value], value._dq.maxlen, value.dropped)
        elif isinstance(value, Status):
            value = (value.status_code, value.description)
        elif key == "_lock":
            value = type(value)
        fields[key] = value
    return fields


ATTRIBUTES = {"analysis.bytes": 1024, "analysis.tokens": 180, "text": "x", "ratio": 0.5, "flag": True}


@pytest.mark.parametrize("sampler", [ALWAYS_ON, ParentBasedTraceIdRatio(1.0)], ids=["always_on", "parentbased"])
def test_a_child_of_a_sampled_span_is_the_span_the_sdk_makes(
    finished: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, sampler: Sampler
) -> None:
    sdk, short, ids = _tracers(finished, sampler)
    starts = SdkStarts(monkeypatch)
    state = TraceState([("vendor", "v")])
    root = SpanContext(0xABC, 0x123, is_remote=False, trace_flags=TraceFlags(0x03), trace_state=state)
    under_root = trace.set_span_in_context(trace.NonRecordingSpan(root))
    made = []
    for tracer in (sdk, short):
        ids.next_span_id = 7
        span = tracer.start_span("analysis.count", under_root, start_time=10, attributes=ATTRIBUTES)
        assert isinstance(span, Span)
        span.set_attribute("later", 1)
        span.add_event("event", {"n": 1}, timestamp=11)
        span.end(end_time=20)
        made.append(span)
    assert starts.count == 1, "the short way did not take the SDK's start_span"
    assert type(made[0]) is type(made[1])
    assert _fields(made[0]) == _fields(made[1])
    exported: list[ReadableSpan] = list(finished.get_finished_spans())
    assert SpanEncoder().encode(exported[:1]) == SpanEncoder().encode(exported[1:])
    assert made[1].context.trace_state == state and made[1].context.trace_flags == 0x03


def test_under_the_current_span_without_a_context_too(finished: InMemorySpanExporter) -> None:
    sdk, short, _ = _tracers(finished)
    with sdk.start_as_current_span("request") as request:
        child = short.start_span("analysis.tokenize", attributes={"analysis.bytes": 3})
        child.end()
        with short.start_as_current_span("model.predict") as nested:
            assert nested.is_recording()
    assert child.parent == request.get_span_context() and child.get_span_context().trace_id == request.context.trace_id
    assert [s.name for s in finished.get_finished_spans()] == ["analysis.tokenize", "model.predict", "request"]


REMOTE = SpanContext(0xABC, 0x123, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
UNSAMPLED = SpanContext(0xABC, 0x123, is_remote=False, trace_flags=TraceFlags(0))
LOCAL = SpanContext(0xABC, 0x123, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))


@pytest.mark.parametrize(
    ("parent", "options"),
    [
        (None, {}),
        (REMOTE, {}),
        (UNSAMPLED, {}),
        (LOCAL, {"links": [Link(REMOTE)]}),
        (LOCAL, {"attributes": {"list": ["converted", "to a tuple"]}}),
        (LOCAL, {"attributes": {"": "an empty key is dropped"}}),
        (LOCAL, {"attributes": {f"key.{n}": n for n in range(129)}}),
    ],
    ids=["root", "remote parent", "unsampled parent", "links", "a value to convert", "empty key", "over the limit"],
)
def test_every_other_span_goes_the_sdks_way(
    finished: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, parent: SpanContext | None, options: Any
) -> None:
    _, short, _ = _tracers(finished)
    starts = SdkStarts(monkeypatch)
    context = None if parent is None else trace.set_span_in_context(trace.NonRecordingSpan(parent))
    short.start_span("span", context, **options).end()
    assert starts.count == 1


@pytest.mark.parametrize(
    "sampler",
    [TraceIdRatioBased(1.0), ParentBased(ALWAYS_ON, local_parent_sampled=TraceIdRatioBased(1.0))],
    ids=["ratio", "parent-based with its own child sampler"],
)
def test_a_sampler_that_judges_children_itself_is_asked(
    finished: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, sampler: Sampler
) -> None:
    _, short, _ = _tracers(finished, sampler)
    starts = SdkStarts(monkeypatch)
    short.start_span("span", trace.set_span_in_context(trace.NonRecordingSpan(LOCAL))).end()
    assert starts.count == 1
