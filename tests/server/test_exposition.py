"""service.server.exposition answers as prometheus_client's own HTTP exposition (its WSGI app, which its
``start_http_server`` serves) for every case: each metric type, escaping, Accept header, gzip, ``name[]``, path and
method. The real prometheus_client is imported here, in the test process; the metrics port does without it."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
    UnknownMetricFamily,
)

from service.server.exposition import answer


class _EveryKind:
    """One family of each type, with the samples the text format treats apart (_created, _gsum, _gcount), a
    timestamp, label values that need escaping and names outside the legacy character set."""

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily("requests", 'Counts "things"\\ across\nlines', labels=["path", "code"])
        counter.add_metric(["/a", "200"], 3.0, created=1700000000.5)
        counter.add_metric(['/b"\\\nc', "500"], 1e21, timestamp=1700000001.25)
        yield counter
        gauge = GaugeMetricFamily("in_flight", "Now", labels=["kind"])
        gauge.add_metric(["x"], float("nan"))
        gauge.add_metric(["y"], float("-inf"))
        yield gauge
        histogram = HistogramMetricFamily("duration_seconds", "How long", labels=["route"])
        histogram.add_metric(["/r"], [("0.1", 2.0), ("+Inf", 5.0)], sum_value=1.5)
        yield histogram
        yield GaugeHistogramMetricFamily("queue", "Waiting", buckets=[("1.0", 4.0), ("+Inf", 6.0)], gsum_value=7.0)
        yield SummaryMetricFamily("size_bytes", "Sizes", count_value=4, sum_value=100.0)
        yield InfoMetricFamily("build", "Build", value={"version": "1.2", "dotted.label": "v"})
        yield StateSetMetricFamily("state", "State", value={"on": True, "off": False})
        yield UnknownMetricFamily("mystery", "Unknown", value=2.0)
        yield GaugeMetricFamily("dotted.name", "UTF-8 name", value=1.0)
        yield CounterMetricFamily("no_help_total", "", value=0.0)


@pytest.fixture(scope="module")
def registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_EveryKind())
    return registry


def _prometheus_client(registry: CollectorRegistry, method: str, target: str, headers: dict[str, str]) -> Any:
    """What prometheus_client's WSGI app answers, given the environ its wsgiref server would build."""
    path, _, query = target.partition("?")
    environ = {"REQUEST_METHOD": method, "PATH_INFO": unquote(path, "iso-8859-1"), "QUERY_STRING": query}
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()})
    started: list[Any] = []
    body = b"".join(make_wsgi_app(registry)(environ, lambda status, headers: started.extend([status, headers])))
    return started[0], started[1], body


ACCEPTS = [
    "",
    "text/plain",
    "text/plain; version=0.0.4",
    "text/plain;version=1.0.0",
    "text/plain; version=1.0.0; escaping=allow-utf-8",
    "text/plain; version=1.0.0; escaping=dots",
    "text/plain; version=1.0.0; escaping=values",
    "text/plain; version=1.0.0; escaping=nonsense",
    "application/openmetrics-text",
    "application/openmetrics-text; version=0.0.1",
    "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
    "application/openmetrics-text; version=1.0.0; escaping=underscores",
    # Prometheus 3's default scrape header.
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;"
    "version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "application/json, text/plain;version=1.0.0",
    "*/*",
]
TARGETS = ["/metrics", "/", "/anything/else", "/metrics?name[]=requests_total&name[]=in_flight", "/metrics?x=1"]


@pytest.mark.parametrize(("accept", "target"), list(itertools.product(ACCEPTS, TARGETS)))
def test_a_get_is_answered_as_prometheus_client_does(registry: CollectorRegistry, accept: str, target: str) -> None:
    headers = {"accept": accept} if accept else {}
    assert answer(registry, "GET", target, headers) == _prometheus_client(registry, "GET", target, headers)


@pytest.mark.parametrize("accept_encoding", ["gzip", "br;q=1.0, GZIP;q=0.5", "deflate"])
def test_the_body_is_gzipped_when_the_client_accepts_it(registry: CollectorRegistry, accept_encoding: str) -> None:
    headers = {"accept": "text/plain; version=1.0.0", "accept-encoding": accept_encoding}
    status, ours, body = answer(registry, "GET", "/metrics", headers)
    want_status, theirs, want_body = _prometheus_client(registry, "GET", "/metrics", headers)
    assert (status, ours) == (want_status, theirs)
    gzipped = ("Content-Encoding", "gzip") in ours
    assert gzipped == ("gzip" in accept_encoding.lower())
    if gzipped:  # the gzip header holds the time of compression: the same content, not the same bytes
        body, want_body = gzip.decompress(body), gzip.decompress(want_body)
    assert body == want_body


@pytest.mark.parametrize(
    ("method", "target"), [("OPTIONS", "/metrics"), ("POST", "/metrics"), ("HEAD", "/metrics"), ("GET", "/favicon.ico")]
)
def test_other_methods_and_the_favicon(registry: CollectorRegistry, method: str, target: str) -> None:
    assert answer(registry, method, target, {}) == _prometheus_client(registry, method, target, {})


@pytest.mark.parametrize(
    "version", ["2.\nX-Injected: 1", "2.\r\nX-Injected: 1", "2.0 x", "1.0.0\x00", "２.0", "1..0", "", "2.x"]
)
@pytest.mark.parametrize("media", ["application/openmetrics-text", "text/plain"])
def test_a_version_that_is_not_digits_and_dots_is_never_written_back(
    registry: CollectorRegistry, media: str, version: str
) -> None:
    """Content-Type carries the version asked for: anything but digits and dots is passed over (a bare ``version=``
    on OpenMetrics means its latest version, as prometheus_client has it)."""
    _status, headers, _body = answer(registry, "GET", "/metrics", {"accept": f"{media}; version={version}"})
    content_type = dict(headers)["Content-Type"]
    assert content_type.isprintable() and "X-Injected" not in content_type
    expected = "application/openmetrics-text; version=1.0.0" if media.startswith("application") and not version else ""
    assert content_type.startswith(expected or "text/plain; version=0.0.4;")
