"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` variables.

Off unless an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or
``OTEL_TRACES_EXPORTER`` names an exporter (``console`` for local work). The provider, the batch processor and the
exporter are created by the app factory, in each worker after fork: their threads and sockets would not survive a
fork.
Spans are exported from the processor's thread through a bounded queue, so a slow or absent collector never slows a
request; what is lost is counted in ``flask_svc_otel_spans_dropped_total``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Meter, NoOpCounter, NoOpMeter, NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.util.types import Attributes

from service.metrics import Instruments
from service.names import PROBE_PATHS, TRACING_EXTENSION

if TYPE_CHECKING:
    from flask import Flask

    from service.config import Settings

log = logging.getLogger(__name__)

# Matched by the Flask instrumentation against the full URL with re.search, so each is anchored on both ends.
EXCLUDED_URLS = rf"^https?://[^/]+({'|'.join(PROBE_PATHS)})/?(\?.*)?$"
_FLUSH_TIMEOUT_MS = 2000  # a worker's last flush must fit in the drain budget


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
    os.environ.setdefault(_INTERNAL_METRICS, "true")  # read by the processor's constructor
    return BatchSpanProcessor(exporter, meter_provider=DropsMeterProvider(instruments), **options)


def _make_exporter(name: str, settings: Settings) -> SpanExporter:
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The endpoint as the settings read it; headers, timeout and compression the SDK reads from OTEL_* itself.
        if settings.otel_traces_endpoint:
            return OTLPSpanExporter(endpoint=settings.otel_traces_endpoint)
        if settings.otel_endpoint:
            return OTLPSpanExporter(endpoint=settings.otel_endpoint.rstrip("/") + "/v1/traces")
        return OTLPSpanExporter()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    raise ValueError(name)


@dataclass(frozen=True)
class Tracing:
    """An app's tracer provider (its batch processor's thread and its exporter) and the tracer its handlers use."""

    provider: TracerProvider
    tracer: trace.Tracer

    def stop(self) -> None:
        """Flush what is queued, within a bound, then let the exporter go (``worker_exit``).

        The SDK's shutdown waits for an export in progress, up to the OTLP timeout (10 s by default) when the
        collector hangs: run it on a daemon thread and wait only as long as the drain budget allows.
        """
        closer = threading.Thread(target=self._flush_and_shutdown, name="otel-shutdown", daemon=True)
        closer.start()
        closer.join(_FLUSH_TIMEOUT_MS / 1000)

    def _flush_and_shutdown(self) -> None:
        self.provider.force_flush(_FLUSH_TIMEOUT_MS)
        self.provider.shutdown()


def init_app(app: Flask, settings: Settings, instruments: Instruments) -> Tracing | None:
    """Trace the app's requests when the OpenTelemetry variables ask for it; a second call changes nothing.

    Call it in the process that serves (under gunicorn: the worker, after fork) — the processor's thread and the
    exporter's connections would not survive a fork.
    """
    if TRACING_EXTENSION in app.extensions:
        return tracing_of(app)
    provider = _provider(settings, instruments)
    if provider is None:
        app.extensions[TRACING_EXTENSION] = None
        return None

    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(  # type: ignore[no-untyped-call]
        app,
        excluded_urls=EXCLUDED_URLS,
        tracer_provider=provider,
        # Off: a SQL comment context attached to every request, for database instrumentations this service has none
        # of; and the instrumentation's own OpenTelemetry metrics (Prometheus has them), which without a meter
        # provider went through proxies to nowhere on every request.
        enable_commenter=False,
        meter_provider=NoOpMeterProvider(),
    )
    tracing = Tracing(provider, provider.get_tracer("service"))
    app.extensions[TRACING_EXTENSION] = tracing
    return tracing


def for_process(settings: Settings) -> Tracing | None:
    """Tracing for a process without an app (a batch stage), when the OpenTelemetry variables ask for it."""
    from service.metrics import OFF

    provider = _provider(settings, OFF)
    return None if provider is None else Tracing(provider, provider.get_tracer("service"))


def _provider(settings: Settings, instruments: Instruments) -> TracerProvider | None:
    name = settings.traces_exporter
    if name is None:
        return None
    # Server spans with the stable HTTP semantic conventions (http.request.method, url.path, …).
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "flask-svc"}))
    # Sampler from OTEL_TRACES_SAMPLER(_ARG). worker_exit shuts down within a bound; the SDK's own atexit hook
    # would wait out a hung export instead.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    exporter = CountingExporter(_make_exporter(name, settings), instruments)
    provider.add_span_processor(counting_processor(exporter, instruments))
    log.info("tracing on", extra={"exporter": name})
    return provider


def tracing_of(app: Flask) -> Tracing | None:
    """The app's tracing; None when it is off."""
    found: Tracing | None = app.extensions.get(TRACING_EXTENSION)
    return found


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the active span, to hand to work that runs in another process."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def continued_span(
    tracing: Tracing | None, name: str, traceparent: str | None, attributes: dict[str, str]
) -> Iterator[None]:
    """A span continuing the trace ``traceparent`` names (a new trace without one); nothing when tracing is off."""
    if tracing is None:
        yield
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent} if traceparent else {})
    with tracing.tracer.start_as_current_span(
        name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    ):
        yield
