"""service.tracing's counters against the real OpenTelemetry SDK: failed exports, and spans the SDK drops because
its queue is full — counted from the SDK's own report of them (its internal metrics, handed to a meter provider of
ours), which this test pins: an SDK that stops reporting them fails here instead of the drops going uncounted."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from service.metrics import Instruments
from service.tracing_http import EnvironGetter, is_probe
from service.tracing_sdk import CountingExporter, SteadyResource, counting_processor

QUEUE = 4


class HeldExporter(SpanExporter):
    """Holds the processor's export thread until released, so the queue behind it fills up."""

    def __init__(self, result: SpanExportResult = SpanExportResult.SUCCESS) -> None:
        self.exporting = threading.Event()
        self.release = threading.Event()
        self.result = result
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exporting.set()
        self.release.wait(10)
        self.exported += len(spans)
        return self.result


def _counted(instruments: Instruments, reason: str) -> float:
    assert instruments.registry is not None
    value = instruments.registry.get_sample_value("flask_svc_otel_spans_dropped_total", {"reason": reason})
    return value or 0.0


def test_queue_full_drops_are_counted_exactly_as_the_sdk_drops_them() -> None:
    instruments = Instruments.create(CollectorRegistry())
    exporter = HeldExporter()
    processor = counting_processor(exporter, instruments, max_queue_size=QUEUE, max_export_batch_size=1)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    tracer.start_span("first").end()
    assert exporter.exporting.wait(10)  # the export thread holds the first span and waits: nothing else leaves
    for index in range(19):
        tracer.start_span(f"span-{index}").end()
    exporter.release.set()
    provider.shutdown()  # exports what the queue kept
    assert exporter.exported == 1 + QUEUE
    assert _counted(instruments, "queue_full") == 20 - 1 - QUEUE


def test_failed_exports_are_counted_by_span() -> None:
    instruments = Instruments.create(CollectorRegistry())
    inner = HeldExporter(SpanExportResult.FAILURE)
    inner.release.set()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(counting_processor(CountingExporter(inner, instruments), instruments))
    tracer = provider.get_tracer("test")
    for _ in range(3):
        tracer.start_span("lost").end()
    provider.shutdown()
    assert _counted(instruments, "export_failed") == 3


@pytest.mark.parametrize(
    ("path", "query", "probe"),
    [
        ("/livez", "", True),
        ("/readyz", "verbose=1", True),
        ("/startupz/", "", True),
        ("/api/v1/analyze", "next=/livez", False),
        ("/api/livez-report", "", False),
        ("/livez/more", "", False),
    ],
)
def test_probe_exclusion_is_anchored(path: str, query: str, probe: bool) -> None:
    assert is_probe({"PATH_INFO": path, "QUERY_STRING": query}) is probe


def test_the_environ_getter_reads_headers_as_the_wsgi_server_names_them() -> None:
    environ: dict[str, Any] = {"HTTP_TRACEPARENT": "00-ab-cd-01", "HTTP_X_B3_TRACEID": "ab", "PATH_INFO": "/"}
    getter = EnvironGetter()
    assert getter.get(environ, "traceparent") == ["00-ab-cd-01"]
    assert getter.get(environ, "X-B3-TraceId") == ["ab"]
    assert getter.get(environ, "tracestate") is None
    assert sorted(getter.keys(environ)) == ["traceparent", "x-b3-traceid"]


def test_the_steady_resource_is_the_resource_it_wraps() -> None:
    resource = Resource.create({"service.name": "flask-svc", "deployment.environment": "test"})
    steady = SteadyResource(resource)
    assert steady == resource and hash(steady) == hash(resource)
    assert dict(steady.attributes) == dict(resource.attributes) and steady.schema_url == resource.schema_url
    assert {resource: "grouped"}[steady] == "grouped"  # the OTLP encoder's grouping finds it as the same resource
