"""service.tracing in process, against a real OTLP/HTTP receiver on loopback: the server span and the pipeline's
stage spans, the incoming trace continued, probes left out, and failed exports counted.

The worker's last flush on exit and a dead collector under load are in tests/integration/test_tracing.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import request
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, get_current_span

from harness.otlp import otlp_receiver
from service.names import ACCESS_ENVIRON_KEY, ANALYZE_PATH, LIFECYCLE_EXTENSION, PROBE_PATHS
from service.tracing import tracing_of
from service.tracing_otlp import SpanEncoder
from tests.app.conftest import make_app, sample

SERVER_KIND = 2  # SPAN_KIND_SERVER
INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_PARENT = "00f067aa0ba902b7"


def test_spans_reach_the_collector_and_continue_the_incoming_trace() -> None:
    with otlp_receiver() as receiver:
        app = make_app(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        tracing = tracing_of(app)
        assert tracing is not None
        with app.test_client() as client:
            for path in PROBE_PATHS:
                assert client.get(path).status_code == 200
            headers = {"traceparent": f"00-{INCOMING_TRACE}-{INCOMING_PARENT}-01"}
            analyzed = client.post(ANALYZE_PATH + "?top=1", json={"text": "one two two"}, headers=headers)
            assert analyzed.status_code == 200
            access = request.environ[ACCESS_ENVIRON_KEY]
        assert tracing.provider.force_flush(5000)
        tracing.stop()
        spans = list(receiver.spans)
    assert all(ct == "application/x-protobuf" for ct in receiver.content_types)
    (server,) = [s for s in spans if s.kind == SERVER_KIND]  # the probes made none
    assert (server.trace_id, server.parent_span_id) == (INCOMING_TRACE, INCOMING_PARENT)
    assert server.name == f"POST {ANALYZE_PATH}" and server.attributes["http.route"] == ANALYZE_PATH
    assert server.attributes["http.response.status_code"] == 200
    assert server.resource["service.name"] == "flask-svc"
    stages = {s.name: s for s in spans if s.parent_span_id == server.span_id}
    assert set(stages) == {"analysis.tokenize", "analysis.count"}
    assert stages["analysis.tokenize"].attributes["analysis.bytes"] == len("one two two")
    assert stages["analysis.count"].attributes == {"analysis.tokens": 3, "analysis.unique": 2}
    # The access line carries the server span's ids.
    assert (access["trace_id"], access["span_id"]) == (INCOMING_TRACE, server.span_id)


def test_a_refused_export_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.net import free_port

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.5")  # the SDK retries a refused export until then
    app = make_app(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{free_port()}/v1/traces")
    tracing = tracing_of(app)
    assert tracing is not None
    app.test_client().get("/version")
    tracing.provider.force_flush(5000)
    tracing.stop()
    assert sample(app, "flask_svc_otel_spans_dropped_total", {"reason": "export_failed"}) >= 1


def test_off_without_the_variables() -> None:
    assert tracing_of(make_app()) is None
    assert tracing_of(make_app(OTEL_TRACES_EXPORTER="none", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1")) is None


class StartedSpans(SpanProcessor):
    """Every span the SDK starts, recording or not made by this provider (a dropped request must start none)."""

    def __init__(self) -> None:
        self.started: list[Span] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started.append(span)


def test_a_dropped_request_skips_the_instrumentation_and_keeps_the_context() -> None:
    """Sampler first: a request whose trace the sampler drops (here: the caller's is not sampled) gets no span from
    the SDK — none started, none exported — yet its log lines carry the trace."""
    with otlp_receiver() as receiver:
        app = make_app(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)  # parentbased_always_on
        tracing = tracing_of(app)
        assert tracing is not None
        started = StartedSpans()
        tracing.provider.add_span_processor(started)
        with app.test_client() as client:
            caller = f"00-{INCOMING_TRACE}-{INCOMING_PARENT}"
            assert (
                client.post(ANALYZE_PATH, json={"text": "a b"}, headers={"traceparent": caller + "-00"}).status_code
                == 200
            )
            dropped = dict(request.environ)
            started_when_dropped = list(started.started)
            assert (
                client.post(ANALYZE_PATH, json={"text": "a b"}, headers={"traceparent": caller + "-01"}).status_code
                == 200
            )
            sampled = dict(request.environ)
        assert tracing.provider.force_flush(5000)
        tracing.stop()
        spans = list(receiver.spans)
    assert started_when_dropped == [], "the dropped request started a span"
    assert [s.kind for s in started.started] == [SpanKind.SERVER, SpanKind.INTERNAL, SpanKind.INTERNAL]
    assert sampled[ACCESS_ENVIRON_KEY]["span_id"] == format(started.started[0].context.span_id, "016x")
    assert dropped[ACCESS_ENVIRON_KEY]["trace_id"] == INCOMING_TRACE
    assert dropped[ACCESS_ENVIRON_KEY]["span_id"] not in (None, INCOMING_PARENT)
    assert [s.kind for s in spans if s.parent_span_id == INCOMING_PARENT] == [SERVER_KIND]  # the sampled one only


# Requests whose server spans are compared, attribute by attribute and in order, with those the upstream Flask
# instrumentation (opentelemetry-instrumentation-flask 0.66b1, stable HTTP conventions) gave for the same requests,
# recorded in data/upstream_server_spans.json before the service's own instrumentation replaced it.
CALLER = {"traceparent": f"00-{INCOMING_TRACE}-{INCOMING_PARENT}-01", "baggage": "tenant=acme"}
PEER = {"REMOTE_PORT": "50123"}
SCENARIOS: dict[str, dict[str, object]] = {
    "analyze, continued": {
        "method": "POST",
        "path": ANALYZE_PATH + "?top=1&lang=en",
        "json": {"text": "one two two"},
        "headers": {**CALLER, "User-Agent": "t/1"},
    },
    "unknown path, a bot": {"method": "GET", "path": "/no/such", "headers": {"User-Agent": "Googlebot/2.1"}},
    "root trace, a synthetic test": {"method": "GET", "path": "/version", "headers": {"User-Agent": "AlwaysOn x"}},
    "method not allowed": {"method": "DELETE", "path": ANALYZE_PATH, "headers": CALLER},
    "unknown method": {"method": "FOO", "path": "/version"},
    "bad body": {"method": "POST", "path": ANALYZE_PATH, "data": b"{", "headers": {"Content-Type": "application/json"}},
    "route with a variable": {"method": "GET", "path": "/api/v1/jobs/nope"},
    "head": {"method": "HEAD", "path": "/version"},
    "https on a port, a named peer": {
        "method": "GET",
        "path": "/version",
        "base_url": "https://example.org:8443",
        "environ": {"REMOTE_HOST": "peer.example"},
    },
    "unhandled exception": {"method": "GET", "path": "/boom", "headers": CALLER},
}
BOOM = RuntimeError("boom")


def _raise() -> str:
    raise BOOM


def _described(span: ReadableSpan) -> dict[str, object]:
    """What the OTLP export carries of a server span, ids and times replaced by what they must equal."""
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "attributes": [[key, value] for key, value in (span.attributes or {}).items()],
        "status": [span.status.status_code.name, span.status.description],
        "events": [
            [event.name, {k: v for k, v in (event.attributes or {}).items() if k != "exception.stacktrace"}]
            for event in span.events
        ],
        "stacktrace recorded": all("exception.stacktrace" in (event.attributes or {}) for event in span.events),
        "continued": parent is not None and format(parent.span_id, "016x") == INCOMING_PARENT,
        "schema_url": span.instrumentation_scope.schema_url if span.instrumentation_scope else None,
    }


def server_spans_of_the_scenarios(finished: list[ReadableSpan] | None = None) -> dict[str, object]:
    """Each scenario's server span as ``_described``, run through an app with tracing on (always on); every span
    the scenarios made is added to ``finished`` when given."""
    app = make_app(OTEL_TRACES_EXPORTER="console")
    app.add_url_rule("/boom", view_func=_raise)
    tracing = tracing_of(app)
    assert tracing is not None
    exporter = InMemorySpanExporter()
    tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    described: dict[str, object] = {}
    for name, scenario in SCENARIOS.items():
        client = app.test_client()
        exporter.clear()
        response = client.open(
            str(scenario["path"]),
            method=str(scenario["method"]),
            base_url=str(scenario.get("base_url", "http://localhost")),
            headers=scenario.get("headers"),  # type: ignore[arg-type]
            json=scenario.get("json"),
            data=scenario.get("data"),
            environ_overrides={**PEER, **scenario.get("environ", {})},  # type: ignore[dict-item]
        )
        servers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
        if finished is not None:
            finished += exporter.get_finished_spans()
        described[name] = {"status_code": response.status_code, "spans": [_described(s) for s in servers]}
    return described


def test_server_spans_are_those_the_upstream_instrumentation_made() -> None:
    """Name, kind, every attribute in order, status, exception event, parent and schema: as upstream's, request by
    request (only the instrumentation scope's name differs: the spans are the service's own)."""
    recorded = json.loads((Path(__file__).parent / "data" / "upstream_server_spans.json").read_text())["scenarios"]
    assert json.loads(json.dumps(server_spans_of_the_scenarios())) == recorded


def test_the_scenarios_spans_are_exported_in_the_bytes_upstream_would_send() -> None:
    """The OTLP exporter's own encoder (service.tracing_otlp) against upstream's, on real requests' spans: server
    spans of every scenario (an exception event among them) and the analysis stage spans, in one batch."""
    spans: list[ReadableSpan] = []
    server_spans_of_the_scenarios(spans)
    assert {span.name for span in spans} >= {"analysis.tokenize", "analysis.count", "GET /boom"}
    assert any(span.events for span in spans)
    assert SpanEncoder().encode(spans) == encode_spans(spans).SerializePartialToString()


def test_a_request_answered_before_its_view_still_has_its_span() -> None:
    """The span starts in the first before_request hook: a request an earlier hook answers (fault injection here,
    a cross-site form post likewise) is traced too — upstream's hook ran last and such requests had no span."""
    app = make_app(OTEL_TRACES_EXPORTER="console")
    tracing = tracing_of(app)
    assert tracing is not None
    exporter = InMemorySpanExporter()
    tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    app.extensions[LIFECYCLE_EXTENSION].fault = True
    assert app.test_client().post(ANALYZE_PATH, json={"text": "a"}).status_code == 500
    (span,) = exporter.get_finished_spans()
    assert span.name == f"POST {ANALYZE_PATH}" and span.kind is SpanKind.SERVER
    assert span.attributes is not None and span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"] == "500" and span.status.status_code is StatusCode.ERROR


def test_a_dropped_request_carries_the_context_the_sdk_would_give_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The non-recording span of a dropped request: what the SDK's own tracer gives a dropped root (not sampled,
    the random-trace-id flag) and a dropped continued trace (the caller's flags, the caller's trace id)."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")  # the SDK reads its sampler from the environment
    app = make_app(OTEL_TRACES_EXPORTER="console")
    tracing = tracing_of(app)
    assert tracing is not None
    seen: list[SpanContext] = []
    app.before_request_funcs[None].append(lambda: seen.append(get_current_span().get_span_context()) and None)
    client = app.test_client()
    assert client.get("/version").status_code == 200
    caller = {"traceparent": f"00-{INCOMING_TRACE}-{INCOMING_PARENT}-00"}
    assert client.get("/version", headers=caller).status_code == 200
    sdk_root = tracing.provider.get_tracer("test").start_span("dropped root").get_span_context()
    root, continued = seen
    assert (root.trace_flags, root.is_remote) == (sdk_root.trace_flags, sdk_root.is_remote)
    assert not root.trace_flags.sampled and root.is_valid
    assert format(continued.trace_id, "032x") == INCOMING_TRACE and continued.trace_flags == 0
    assert format(continued.span_id, "016x") != INCOMING_PARENT
