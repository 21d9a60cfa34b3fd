"""The OpenTelemetry SDK side of service.tracing, imported only when tracing is on (the SDK and the metrics API cost
a worker a tenth of its start otherwise): the provider with its counting exporter and processor, and the
sampler-first gate in front of the Flask instrumentation."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from flask import request
from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Meter, NoOpCounter, NoOpMeter, NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.util.types import Attributes

from service.metrics import Instruments
from service.names import PROBE_PATHS

# Matched by the Flask instrumentation against the full URL with re.search, so each is anchored on both ends.
EXCLUDED_URLS = rf"^https?://[^/]+({'|'.join(PROBE_PATHS)})/?(\?.*)?$"

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

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


# WSGI environ key: this request's trace was not sampled.
_DROPPED = "flask_svc.trace_dropped"
# The trace id the sampler was asked about, for the SDK to give the request's span (so it decides the same).
_DECIDED_TRACE_ID: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("decided_trace_id", default=None)


class _DecidedIds(RandomIdGenerator):
    """Random ids, except that a root span started while a request's decision is pending takes the trace id the
    sampler already judged (once)."""

    def generate_trace_id(self) -> int:
        decided = _DECIDED_TRACE_ID.get()
        if decided:
            return decided.pop()
        return super().generate_trace_id()


class SamplerFirst:
    """Sampler first: the trace's fate is decided before any span work, from what decides it — the incoming context
    and the trace id, as the SDK would ask its sampler. A sampled (or recorded) request goes through the Flask
    instrumentation unchanged, its span taking the judged trace id. A dropped one skips the instrumentation — no
    request attributes, no span — and runs under a non-recording span that carries the context on (log lines,
    ``traceparent`` handed to batch stages), as the SDK's own non-recording span would: the same trace id, a new
    span id, not sampled, the sampler's trace state."""

    def __init__(self, traced: WSGIApplication, untraced: WSGIApplication, provider: TracerProvider) -> None:
        from opentelemetry.instrumentation.wsgi import wsgi_getter  # how the instrumentation reads the headers

        self.traced, self.untraced, self.provider, self.getter = traced, untraced, provider, wsgi_getter

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").rstrip("/") in PROBE_PATHS:
            environ[_DROPPED] = True  # never traced (EXCLUDED_URLS): the instrumentation has nothing to do
            return self.untraced(environ, start_response)
        parent = propagate.extract(environ, getter=self.getter)
        parent_span = trace.get_current_span(parent).get_span_context()
        ids = self.provider.id_generator
        trace_id = parent_span.trace_id if parent_span.is_valid else ids.generate_trace_id()
        method = str(environ.get("REQUEST_METHOD", "HTTP"))
        decision = self.provider.sampler.should_sample(parent, trace_id, method, trace.SpanKind.SERVER)
        if decision.decision is not Decision.DROP:
            token = _DECIDED_TRACE_ID.set(None if parent_span.is_valid else [trace_id])
            try:
                return self.traced(environ, start_response)
            finally:
                _DECIDED_TRACE_ID.reset(token)
        span = trace.NonRecordingSpan(
            trace.SpanContext(
                trace_id,
                ids.generate_span_id(),
                is_remote=False,
                trace_flags=trace.TraceFlags(),
                trace_state=decision.trace_state,
            )
        )
        environ[_DROPPED] = True
        attached = context.attach(trace.set_span_in_context(span, parent))
        try:
            return self.untraced(environ, start_response)
        finally:
            context.detach(attached)


def _unless_dropped(hook: Callable[..., Any]) -> Callable[..., Any]:
    def hook_unless_dropped(*args: Any) -> Any:
        if request.environ.get(_DROPPED):
            return None
        return hook(*args)

    return hook_unless_dropped


def make_provider(name: str, settings: Settings, instruments: Instruments) -> TracerProvider:
    """The tracer provider for exporter ``name``, its export counted in ``instruments``."""
    # Server spans with the stable HTTP semantic conventions (http.request.method, url.path, …).
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "flask-svc"}))
    # Sampler from OTEL_TRACES_SAMPLER(_ARG). worker_exit shuts down within a bound; the SDK's own atexit hook
    # would wait out a hung export instead.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False, id_generator=_DecidedIds())
    exporter = CountingExporter(_make_exporter(name, settings), instruments)
    provider.add_span_processor(counting_processor(exporter, instruments))
    return provider


def instrument(app: Flask, provider: TracerProvider) -> None:
    """The Flask instrumentation on ``app``, behind the sampler-first gate."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    untraced = app.wsgi_app
    hooks_before = (list(app.before_request_funcs.get(None, [])), list(app.teardown_request_funcs.get(None, [])))
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
    # The instrumentation's request hooks stand aside for a request the sampler dropped (see SamplerFirst).
    before, teardown = hooks_before
    app.before_request_funcs[None] = [
        hook if hook in before else _unless_dropped(hook) for hook in app.before_request_funcs.get(None, [])
    ]
    app.teardown_request_funcs[None] = [
        hook if hook in teardown else _unless_dropped(hook) for hook in app.teardown_request_funcs.get(None, [])
    ]
    app.wsgi_app = SamplerFirst(app.wsgi_app, untraced, provider)  # type: ignore[method-assign]
