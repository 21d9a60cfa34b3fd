"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` variables.

Off unless an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or
``OTEL_TRACES_EXPORTER`` names an exporter (``console`` for local work). The provider, the batch processor and the
exporter are created by the app factory, in each worker after fork: their threads and sockets would not survive a
fork.
Spans are exported from the processor's thread through a bounded queue, so a slow or absent collector never slows a
request; what is lost is counted in ``flask_svc_otel_spans_dropped_total``. The SDK side lives in
``service.tracing_sdk``, imported only when tracing is on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace

from service.names import TRACING_EXTENSION

if TYPE_CHECKING:
    from flask import Flask
    from opentelemetry.sdk.trace import TracerProvider

    from service.config import Settings
    from service.metrics import Instruments

log = logging.getLogger(__name__)

_FLUSH_TIMEOUT_MS = 2000  # a worker's last flush must fit in the drain budget


@dataclass(frozen=True)
class Tracing:
    """An app's tracer provider (its batch processor's thread and its exporter) and the tracer its views use."""

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

    from service.tracing_http import instrument

    instrument(app, provider)
    tracing = Tracing(provider, _tracer(provider))
    app.extensions[TRACING_EXTENSION] = tracing
    return tracing


def for_process(settings: Settings) -> Tracing | None:
    """Tracing for a process without an app (a batch stage), when the OpenTelemetry variables ask for it."""
    if settings.traces_exporter is None:  # off: a stage need not import the metrics module (and Flask) for nothing
        return None
    from service.metrics import OFF

    provider = _provider(settings, OFF)
    return None if provider is None else Tracing(provider, _tracer(provider))


def _tracer(provider: TracerProvider) -> trace.Tracer:
    from service.tracing_sdk import ChildSpans

    return ChildSpans(provider.get_tracer("service"))  # type: ignore[arg-type]


def _provider(settings: Settings, instruments: Instruments) -> TracerProvider | None:
    name = settings.traces_exporter
    if name is None:
        return None
    from service.tracing_sdk import make_provider

    provider = make_provider(name, settings, instruments)
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
