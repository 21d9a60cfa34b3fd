"""The OpenTelemetry SDK side of service.tracing, imported only when tracing is on (the SDK and the metrics API cost
a worker a tenth of its start otherwise): the provider with its counting exporter and processor. The server spans
are service.tracing_http's."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Meter, NoOpCounter, NoOpMeter, NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
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
