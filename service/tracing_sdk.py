"""The OpenTelemetry SDK side of service.tracing, imported only when tracing is on (the SDK and the metrics API cost
a worker a tenth of its start otherwise): the provider with its counting exporter and processor. The server spans
are service.tracing_http's."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Meter, NoOpCounter, NoOpMeter, NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Tracer, TracerProvider, _Span
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, get_current_span
from opentelemetry.util.types import Attributes

from service.metrics import Instruments

if TYPE_CHECKING:
    from service.config import Settings


class CountingExporter(SpanExporter):
    """Counts spans whose export failed (collector down, refused, timed out)."""

    def __init__(self, inner: SpanExporter, instruments: Instruments) -> None:
        self.inner = inner
        self.instruments = instruments

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.instruments.spans_dropped.labels("export_failed").inc(len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


# The SDK reports what its batch processor does with each span as this counter (OpenTelemetry's semantic
# conventions), an ``error.type`` of ``queue_full`` for a span it dropped; it reports only to the meter provider it is
# given, and only with its internal metrics enabled.
SPAN_PROCESSED_METRIC = "otel.sdk.processor.span.processed"
_INTERNAL_METRICS = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"


class _QueueFullCounter(NoOpCounter):
    def __init__(self, instruments: Instruments) -> None:
        super().__init__(SPAN_PROCESSED_METRIC)
        self.instruments = instruments

    def add(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None:
        if attributes and attributes.get("error.type") == "queue_full":
            self.instruments.spans_dropped.labels("queue_full").inc(amount)


class _DropsMeter(NoOpMeter):
    def __init__(self, name: str, instruments: Instruments) -> None:
        super().__init__(name)
        self.instruments = instruments

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        if name == SPAN_PROCESSED_METRIC:
            return _QueueFullCounter(self.instruments)
        return super().create_counter(name, unit, description)


class DropsMeterProvider(NoOpMeterProvider):
    """Turns the SDK's own count of spans dropped on a full queue into ``flask_svc_otel_spans_dropped_total``; every
    other SDK metric goes nowhere."""

    def __init__(self, instruments: Instruments) -> None:
        self.instruments = instruments

    def get_meter(
        self, name: str, version: str | None = None, schema_url: str | None = None, attributes: Attributes = None
    ) -> Meter:
        return _DropsMeter(name, self.instruments)


def counting_processor(exporter: SpanExporter, instruments: Instruments, **options: int) -> BatchSpanProcessor:
    """The SDK's batch processor, reporting the spans it drops to ``instruments`` (``options``: its queue and batch
    sizes; from ``OTEL_BSP_*`` when not given)."""
    # Read by the processor's constructor, and by each tracer the provider makes afterwards: set only while the
    # processor is made, as the tracers' own metrics (spans started, live) would cost every span two counter adds
    # through the global meter proxies, going nowhere.
    asked = os.environ.get(_INTERNAL_METRICS)
    os.environ[_INTERNAL_METRICS] = "true"
    try:
        return BatchSpanProcessor(exporter, meter_provider=DropsMeterProvider(instruments), **options)
    finally:
        if asked is None:
            del os.environ[_INTERNAL_METRICS]
        else:
            os.environ[_INTERNAL_METRICS] = asked


def _make_exporter(name: str, settings: Settings) -> SpanExporter:
    if name == "otlp":
        from service.tracing_otlp import OtlpHttpExporter

        # The endpoint as the settings read it; headers, timeout and compression the SDK reads from OTEL_* itself.
        if settings.otel_traces_endpoint:
            return OtlpHttpExporter(endpoint=settings.otel_traces_endpoint)
        if settings.otel_endpoint:
            return OtlpHttpExporter(endpoint=settings.otel_endpoint.rstrip("/") + "/v1/traces")
        return OtlpHttpExporter()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    raise ValueError(name)


class SteadyResource(Resource):
    """The process's resource with its hash computed once. The OTLP encoder groups every exported span by resource,
    and a Resource hashes by serialising its attributes to JSON each time (~10 µs, a third of encoding a span)."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


def make_provider(name: str, settings: Settings, instruments: Instruments) -> TracerProvider:
    """The tracer provider for exporter ``name``, its export counted in ``instruments``."""
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "flask-svc"}))
    # Sampler from OTEL_TRACES_SAMPLER(_ARG). worker_exit shuts down within a bound; the SDK's own atexit hook
    # would wait out a hung export instead.
    provider = TracerProvider(resource=SteadyResource(resource), shutdown_on_exit=False)
    exporter = CountingExporter(_make_exporter(name, settings), instruments)
    provider.add_span_processor(counting_processor(exporter, instruments))
    return provider


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_PLAIN_VALUES = (str, int, float, bool)  # values the SDK's attribute check returns as they are (no length limit set)
UNSET = Status(StatusCode.UNSET)  # a new span's status, shared (read-only)


class ChildSpans(Tracer):
    """The SDK's tracer (its state taken over), with a shorter way to start the commonest span: a child of a sampled
    span of this process (the analysis stages, under the request's span) when the sampler follows such a parent.

    For that span the SDK's ``start_span`` asks the sampler (its answer is known: record and sample, the parent's
    trace state), builds flags, and checks and copies every attribute through its generic paths — about 150k
    instructions a span. Here the span gets the same fields directly (the same class, context, attributes, limits,
    processor; tests/unit/test_tracing_sdk.py compares them field by field with the SDK's). Anything else — a root, a
    remote or unsampled parent, links, a custom sampler, a value the SDK would convert, limits reached — goes the
    SDK's way."""

    def __init__(self, tracer: Tracer) -> None:
        self.__dict__.update(vars(tracer))
        sampler = self.sampler
        follows = sampler is ALWAYS_ON or (
            isinstance(sampler, ParentBased) and sampler._local_parent_sampled is ALWAYS_ON  # the default
        )
        self._direct = follows and self._span_limits.max_span_attribute_length is None

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        parent = get_current_span(context).get_span_context()
        if (
            not self._direct
            or links
            or not (parent.is_valid and parent.trace_flags.sampled and not parent.is_remote)
            or not self._plain(attributes)
            or not self._is_enabled()
        ):
            return super().start_span(
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
        span: _Span = object.__new__(_Span)  # without the SDK's constructor: its fields are set below
        flags = _SAMPLED_RANDOM if parent.trace_flags.random_trace_id else _SAMPLED
        span_id = self.id_generator.generate_span_id()
        span._context = SpanContext(parent.trace_id, span_id, False, flags, parent.trace_state)
        span._name, span._kind, span._parent = name, kind, parent
        span._instrumentation_info, span._instrumentation_scope = self.instrumentation_info, self._instrumentation_scope
        span._start_time = span._end_time = None
        limits = self._span_limits
        span._attributes = BoundedAttributes(limits.max_span_attributes, None, False, None)
        if attributes:
            span._attributes._dict.update(attributes)
        span._events, span._links = BoundedList(limits.max_events), BoundedList(limits.max_links)
        span._resource, span._status, span._sampler, span._trace_config = self.resource, UNSET, self.sampler, None
        span._record_exception, span._set_status_on_exception = record_exception, set_status_on_exception
        span._span_processor, span._limits, span._lock = self.span_processor, limits, threading.Lock()
        span._record_end_metrics = self._tracer_metrics.start_span(parent, Decision.RECORD_AND_SAMPLE)
        span.start(start_time=start_time, parent_context=context)
        return span

    def _plain(self, attributes: Attributes) -> bool:
        """Attributes the SDK would keep as they are: string keys, plain values, within the count limit."""
        if not attributes:
            return True
        limit = self._span_limits.max_span_attributes
        if limit is not None and len(attributes) > limit:
            return False
        return all(type(key) is str and key and type(value) in _PLAIN_VALUES for key, value in attributes.items())
