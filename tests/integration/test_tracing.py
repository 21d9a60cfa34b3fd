"""Tracing against a real OTLP/HTTP receiver on loopback: spans, attributes, links, propagation, logs, and a dead
collector that must not slow requests down."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.otlp import ReceivedSpan, blackhole_collector, otlp_receiver
from harness.server import running_server

SERVER_KIND = 2  # SPAN_KIND_SERVER
INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_PARENT = "00f067aa0ba902b7"


def _wait_for(receiver_spans: list[ReceivedSpan], predicate: object, timeout: float = 10) -> list[ReceivedSpan]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [s for s in list(receiver_spans) if predicate(s)]  # type: ignore[operator]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no matching span among {[s.name for s in receiver_spans]}")


def test_spans_reach_the_collector_with_links_attributes_and_log_correlation() -> None:
    with otlp_receiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "flask-svc-test",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "WEB_CONCURRENCY": "2",
        }
        with running_server(env) as server:
            for path in ("/livez", "/healthz", "/readyz", "/startupz"):
                assert requests.get(server.url + path, timeout=5).ok
            headers = {
                "traceparent": f"00-{INCOMING_TRACE}-{INCOMING_PARENT}-01",
                "baggage": "tenant=acme",
                "X-Request-ID": "traced-1",
            }
            response = requests.post(
                server.url + "/api/v1/analyze?top=1", json={"text": "one two two"}, headers=headers, timeout=5
            )
            assert response.ok
            server_span = _wait_for(receiver.spans, lambda s: s.kind == SERVER_KIND and s.trace_id == INCOMING_TRACE)[0]
            children = _wait_for(receiver.spans, lambda s: s.parent_span_id == server_span.span_id)
            time.sleep(0.5)  # let any (wrong) probe spans arrive too
            server.wait_for_log(lambda r: r.get("logger") == "gunicorn.access" and r.get("request_id") == "traced-1")
            logs = server.json_logs()

    # The incoming traceparent is continued: same trace, the caller's span is the parent.
    assert server_span.parent_span_id == INCOMING_PARENT
    assert server_span.name == "POST /api/v1/analyze"
    attributes = server_span.attributes
    assert attributes["http.request.method"] == "POST"
    assert attributes["url.path"] == "/api/v1/analyze"
    assert attributes["http.route"] == "/api/v1/analyze"
    assert attributes["http.response.status_code"] == 200
    assert server_span.resource["service.name"] == "flask-svc-test"
    assert server_span.resource["deployment.environment"] == "test"
    assert all(ct == "application/x-protobuf" for ct in receiver.content_types)

    stages = {span.name: span for span in children}
    assert set(stages) == {"analysis.tokenize", "analysis.count"}
    assert stages["analysis.tokenize"].attributes["analysis.bytes"] == len("one two two")
    assert all(span.trace_id == INCOMING_TRACE for span in children)

    probe_spans = [s for s in receiver.spans if str(s.attributes.get("url.path", "")).endswith("z")]
    assert probe_spans == []

    access = [r for r in logs if r.get("logger") == "gunicorn.access" and r.get("request_id") == "traced-1"]
    assert len(access) == 1
    assert access[0]["trace_id"] == INCOMING_TRACE and access[0]["span_id"] == server_span.span_id


def _latencies(url: str, count: int) -> list[float]:
    def one(_: int) -> float:
        started = time.perf_counter()
        assert requests.post(url, json={"text": "a b c"}, timeout=10).status_code == 200
        return time.perf_counter() - started

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.slow
def test_a_dead_collector_does_not_slow_requests_and_drops_are_counted() -> None:
    with blackhole_collector() as port:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "10",
            "OTEL_BSP_MAX_QUEUE_SIZE": "16",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "8",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        with running_server(env) as server:
            latencies = _latencies(server.url + "/api/v1/analyze", 120)
            metrics = requests.get(server.metrics_url, timeout=5).text
            # The worker's last flush is bounded too: a hung collector must not eat the drain budget (20 s).
            stopping = time.monotonic()
            assert server.stop() == 0
            stop_seconds = time.monotonic() - stopping

    assert stop_seconds < 8, stop_seconds

    # Were export on the request path, each request would wait out the 10 s export timeout.
    assert statistics.median(latencies) < 1.0, statistics.median(latencies)
    dropped = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('flask_svc_otel_spans_dropped_total{reason="queue_full"}')
    ]
    assert dropped and dropped[0] > 0, metrics


# The server span's attributes as the upstream Flask instrumentation (stable HTTP conventions) gives them, taken from
# the code before the sampler-first gate; ports and the host:port are this run's.
SAMPLED_ATTRIBUTES = {
    "POST /api/v1/analyze": {
        "client.address": "127.0.0.1",
        "http.request.method": "POST",
        "http.response.status_code": 200,
        "http.route": "/api/v1/analyze",
        "network.protocol.version": "1.1",
        "url.path": "/api/v1/analyze",
        "url.query": "top=1",
        "url.scheme": "http",
        "user_agent.original": "t/1",
    },
    "GET /no/such": {
        "client.address": "127.0.0.1",
        "http.request.method": "GET",
        "http.response.status_code": 404,
        "network.protocol.version": "1.1",
        "url.path": "/no/such",
        "url.scheme": "http",
        "user_agent.original": "t/1",
    },
}
RATIO = 0.5


def _ratio_keeps(trace_id: str) -> bool:
    """TraceIdRatioBased's rule: the trace id's low 64 bits below ratio x 2^64."""
    return int(trace_id, 16) & (2**64 - 1) < round(RATIO * 2**64)


def test_sampler_first_sampled_spans_unchanged_dropped_requests_carry_the_context() -> None:
    """Sampled: the same span and attributes as before, and a root span's trace id is the one the sampler judged.
    Dropped (an unsampled caller): no span, yet the trace context goes on into the request's log lines."""
    dropped_trace = "0af7651916cd43dd8448eb211c80319c"
    with otlp_receiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(RATIO),
            "WEB_CONCURRENCY": "1",
        }
        with running_server(env) as server:
            sampled = {"traceparent": f"00-{INCOMING_TRACE}-{INCOMING_PARENT}-01", "User-Agent": "t/1"}
            assert requests.post(server.url + "/api/v1/analyze?top=1", json={"text": "a b"}, headers=sampled).ok
            assert requests.get(server.url + "/no/such", headers=sampled, timeout=5).status_code == 404
            unsampled = {"traceparent": f"00-{dropped_trace}-{INCOMING_PARENT}-00", "X-Request-ID": "dropped-1"}
            assert requests.post(server.url + "/api/v1/analyze", json={"text": "a b"}, headers=unsampled).ok
            roots = [requests.get(server.url + "/version", timeout=5) for _ in range(40)]
            assert all(r.ok for r in roots)
            _wait_for(receiver.spans, lambda s: s.name == "GET /no/such")
            time.sleep(0.5)  # let any (wrong) span of the dropped request arrive too
            access = server.wait_for_log(
                lambda r: r.get("logger") == "gunicorn.access" and r.get("request_id") == "dropped-1"
            )

    servers = [s for s in receiver.spans if s.kind == SERVER_KIND]
    continued = {s.name: s for s in servers if s.trace_id == INCOMING_TRACE}
    assert set(continued) == set(SAMPLED_ATTRIBUTES)
    for name, span in continued.items():
        attributes = dict(span.attributes)
        port = attributes.pop("server.port")
        assert attributes.pop("server.address") == f"127.0.0.1:{port}" and attributes.pop("client.port")
        assert attributes == SAMPLED_ATTRIBUTES[name], name
        assert span.parent_span_id == INCOMING_PARENT

    assert not [s for s in receiver.spans if s.trace_id == dropped_trace]
    assert access["trace_id"] == dropped_trace and len(str(access["span_id"])) == 16
    assert access["span_id"] != INCOMING_PARENT

    root_ids = [s.trace_id for s in servers if s.name == "GET /version"]
    assert 0 < len(root_ids) < 40, len(root_ids)  # some dropped, some kept (all alike: p = 2^-39)
    assert all(_ratio_keeps(trace_id) for trace_id in root_ids), root_ids
