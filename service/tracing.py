"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` variables.

Off unless an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or
``OTEL_TRACES_EXPORTER`` names an exporter (``console`` for local work). The provider, the batch processor and the
exporter are created in each worker after fork (``post_fork``): their threads and sockets would not survive a fork.
Spans are exported from the processor's thread through a bounded queue, so a slow or absent collector never slows a
request; what is lost is counted in ``flask_svc_otel_spans_dropped_total``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from service.config import traces_exporter
from service.lifecycle import PROBE_PATHS
from service.metrics import instruments

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

# Matched by the Flask instrumentation against the full URL with re.search, so each is anchored on both ends.
EXCLUDED_URLS = rf"^https?://[^/]+({'|'.join(PROBE_PATHS)})/?(\?.*)?$"
_FLUSH_TIMEOUT_MS = 2000  # a worker's last flush must fit in the drain budget

_provider: TracerProvider | None = None


class CountingExporter(SpanExporter):
    """Counts spans whose export failed (collector down, refused, timed out)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            instruments().spans_dropped.labels("export_failed").inc(len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """Counts spans refused because the export queue is full (the SDK only logs a warning)."""

    def on_end(self, span: ReadableSpan) -> None:
        # The SDK keeps its queue private; without it, queue-full drops simply go uncounted.
        queue = getattr(getattr(self, "_batch_processor", None), "_queue", None)
        if (
            queue is not None
            and queue.maxlen is not None
            and len(queue) >= queue.maxlen
            and span.context.trace_flags.sampled
        ):
            instruments().spans_dropped.labels("queue_full").inc()
        super().on_end(span)


def _make_exporter(name: str) -> SpanExporter:
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    raise ValueError(name)


def start() -> bool:
    """Create this process's provider from the environment; returns whether tracing is on."""
    global _provider
    name = traces_exporter(os.environ)
    if name is None:
        return False
    # Server spans with the stable HTTP semantic conventions (http.request.method, url.path, …).
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "flask-svc"}))
    # Sampler from OTEL_TRACES_SAMPLER(_ARG). worker_exit shuts down within a bound; the SDK's own atexit hook
    # would wait out a hung export instead.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(CountingBatchSpanProcessor(CountingExporter(_make_exporter(name))))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing on", extra={"exporter": name})
    return True


def stop() -> None:
    """Flush what is queued, within a bound, then let the exporter go (``worker_exit``).

    The SDK's shutdown waits for an export in progress, up to the OTLP timeout (10 s by default) when the collector
    hangs: run it on a daemon thread and wait only as long as the drain budget allows.
    """
    global _provider
    if _provider is None:
        return
    provider, _provider = _provider, None
    closer = threading.Thread(target=_flush_and_shutdown, args=(provider,), name="otel-shutdown", daemon=True)
    closer.start()
    closer.join(_FLUSH_TIMEOUT_MS / 1000)


def _flush_and_shutdown(provider: TracerProvider) -> None:
    provider.force_flush(_FLUSH_TIMEOUT_MS)
    provider.shutdown()


def enabled() -> bool:
    return _provider is not None


def instrument(app: Flask) -> None:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(app, excluded_urls=EXCLUDED_URLS)  # type: ignore[no-untyped-call]


def tracer() -> trace.Tracer:
    return trace.get_tracer("service")


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the active span, to hand to work that runs in another process."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def continued_span(name: str, traceparent: str | None, attributes: dict[str, str]) -> Iterator[None]:
    """A span continuing the trace ``traceparent`` names (a new trace without one); a no-op when tracing is off."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent} if traceparent else {})
    with tracer().start_as_current_span(name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes):
        yield
