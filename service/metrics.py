"""Prometheus metrics of an app: RED metrics per route, the service's own instruments, and the door through which
each feature adds its own (``feature_instruments``).

Under gunicorn every worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by the gunicorn
config before prometheus_client is first imported), through ``service.metric_values``; the gunicorn master merges them
and serves ``/metrics`` on ``METRICS_PORT`` from its own loop (``service.server.metrics_server``). Outside gunicorn
the samples stay in the app's own registry.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service import metric_values
from service.names import METRICS_EXTENSION, MODEL_IDENTITY_EXTENSION, UNMATCHED_ROUTE
from service.problems import STATUS_CODES
from service.request_totals import REQUEST_DURATION, WithRequestTotals

if TYPE_CHECKING:
    from flask import Flask, Request

    from service.config import Settings
    from service.core.schemas import ModelIdentity


metric_values.install()

# Latency buckets for a web API: 5 ms to 10 s.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_CLIENT_REASONS = ("idle", "incomplete_head")
SPAN_DROP_REASONS = ("export_failed", "queue_full")
# The rejected-requests reasons are the problem codes of the statuses counted as bad input.
REJECT_REASONS = {status: STATUS_CODES[status] for status in (400, 413, 415, 422)}


@dataclass(frozen=True)
class Instruments:
    in_flight: Gauge
    worker_threads: Gauge
    rejected: Counter
    build_info: Gauge
    spans_dropped: Counter
    slow_clients: Counter
    registry: CollectorRegistry | None = None  # where they can be read in-process; None when metrics are off
    routes: RouteMetrics | None = None  # the RED metrics per route, recorded by service.requestctx's hooks

    @classmethod
    def create(cls, registry: CollectorRegistry, routes: RouteMetrics | None = None) -> Instruments:
        """One set per app, in the app's registry. Under gunicorn the samples go to the multiprocess files
        whatever the registry; outside it (tests, `flask run`) the registry is where they can be read."""
        return cls(
            in_flight=Gauge(
                "flask_svc_http_requests_in_flight",
                "Requests being handled now (probes excluded)",
                multiprocess_mode="livesum",
                registry=registry,
            ),
            worker_threads=Gauge(
                "flask_svc_worker_threads",
                "Request threads available: the in-flight ceiling",
                multiprocess_mode="livesum",
                registry=registry,
            ),
            rejected=Counter(
                "flask_svc_rejected_requests",
                "Requests refused for bad input, by reason",
                ["reason"],
                registry=registry,
            ),
            build_info=Gauge(
                "flask_svc_build_info",
                "Always 1; labels say what is running",
                ["version", "commit", "python_version", "model", "model_version", "model_sha256"],
                multiprocess_mode="max",
                registry=registry,
            ),
            spans_dropped=Counter(
                "flask_svc_otel_spans_dropped",
                "Spans that never reached the collector, by reason",
                ["reason"],
                registry=registry,
            ),
            slow_clients=Counter(
                "flask_svc_slow_clients_closed",
                "Connections closed by the worker for not sending a whole request head in time: "
                "idle (nothing sent) or incomplete_head",
                ["reason"],
                registry=registry,
            ),
            registry=registry,
            routes=routes,
        )


class _Off:
    """Stands in for every metric when FLASK_SVC_METRICS=false: each call does nothing."""

    def labels(self, *_values: object) -> _Off:
        return self

    def inc(self, _amount: float = 1) -> None:
        pass

    def dec(self, _amount: float = 1) -> None:
        pass

    def set(self, _value: float) -> None:
        pass

    def observe(self, _value: float) -> None:
        pass


_OFF = _Off()
FI = TypeVar("FI", bound="FeatureInstruments")
_FEATURE_INSTRUMENTS = f"{METRICS_EXTENSION}.features"
OFF = Instruments(*([_OFF] * (len(fields(Instruments)) - 2)))  # type: ignore[arg-type]


def url_rule(request: Request) -> str:
    """The route template, never the raw path, so label values stay bounded."""
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE


def instruments_of(app: Flask) -> Instruments:
    """The app's instruments (no-ops when metrics are off, or before ``init_app``)."""
    found: Instruments = app.extensions.get(METRICS_EXTENSION, OFF)
    return found


class RouteMetrics:
    """The RED metrics per route under prometheus-flask-exporter's names, labels, help and buckets:
    ``flask_http_request_duration_seconds`` (method, url_rule, status), ``flask_http_request_total`` and
    ``flask_http_request_exceptions_total`` (method, status), probes excluded.

    The exporter's own hooks are generic (label names checked and sorted on every call, request attributes set and
    read through Flask's proxies, a regular expression per path): they were most of what metrics cost a small
    request. Here each (method, route, status)'s children are looked up once, and the samples are recorded by the
    request hooks the app has anyway (``service.requestctx``), which read the request once for everything."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            REQUEST_DURATION,
            "Flask HTTP request duration in seconds",
            ("method", "url_rule", "status"),
            buckets=REQUEST_BUCKETS,
            registry=None,
        )
        # flask_http_request_total is the histogram's count by (method, status): derived when read, not written.
        # Under gunicorn the metrics server derives it from the merged files; here, for the app's own registry.
        registry.register(WithRequestTotals(self.duration.collect))
        self.exceptions = Counter(
            "flask_http_request_exceptions_total",
            "Total number of HTTP requests which resulted in an exception",
            ("method", "status"),
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._children.get(key)
        if child is None:  # a race only creates the same child twice: labels() is idempotent
            child = self._children[key] = self.duration.labels(method, route, status)
        child.observe(max(seconds, 0))

    def count_exception(self, method: str) -> None:
        """An exception no handler answered (it is answered as a 500)."""
        self.exceptions.labels(method, 500).inc()


def init_app(app: Flask, settings: Settings) -> Instruments:
    """Give the app its instruments and the per-route RED metrics; a second call changes nothing. A feature adds its
    own with ``feature_instruments``; ``record_build`` names what runs once the features are in."""
    if METRICS_EXTENSION in app.extensions:
        return instruments_of(app)
    if not settings.metrics_enabled:
        app.extensions[METRICS_EXTENSION] = OFF
        return OFF
    from prometheus_flask_exporter import PrometheusMetrics
    from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

    multiprocess = os.path.isdir(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
    exporter_class = GunicornPrometheusMetrics if multiprocess else PrometheusMetrics
    # A private registry per app: in multiprocess mode it only needs to exist, and outside gunicorn (tests,
    # `flask run`) it keeps several apps in one process from colliding.
    registry = CollectorRegistry()
    # The exporter only names itself (flask_exporter_info, as it always has); RouteMetrics records the requests.
    exporter = exporter_class(app, path=None, registry=registry, export_defaults=False)
    exporter.info("flask_exporter_info", "Information about the Prometheus Flask exporter", version=exporter.version)
    metrics = Instruments.create(registry, RouteMetrics(registry))
    declare_series(metrics.rejected, [(reason,) for reason in REJECT_REASONS.values()])
    declare_series(metrics.spans_dropped, [(reason,) for reason in SPAN_DROP_REASONS])
    declare_series(metrics.slow_clients, [(reason,) for reason in SLOW_CLIENT_REASONS])
    metrics.worker_threads.set(settings.threads)
    app.extensions[METRICS_EXTENSION] = metrics
    return metrics


def declare_series(metric: Counter | Gauge | Histogram, label_sets: Iterable[tuple[str, ...]]) -> None:
    """Every labelled series exists from the start at 0: a panel shows 0 rather than "No data", and rate() sees the
    first increase instead of a series that appears already at its first value."""
    for labels in label_sets:
        metric.labels(*labels)


class FeatureInstruments(Protocol):
    """A feature's own metrics: a frozen dataclass whose every field is a metric, made in ``registry`` by
    ``create`` (which also declares its label sets with ``declare_series``)."""

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Self: ...


def feature_instruments(app: Flask, kind: type[FI]) -> FI:
    """The app's set of ``kind``, made on first ask (its metrics no-ops when metrics are off). The one door through
    which a feature's metrics enter the app: this module knows no feature's names or labels."""
    made: dict[type[Any], Any] = app.extensions.setdefault(_FEATURE_INSTRUMENTS, {})  # by class: asked per request
    found: FI | None = made.get(kind)
    if found is None:
        registry = instruments_of(app).registry
        found = kind(*([_OFF] * len(fields(kind)))) if registry is None else kind.create(registry)  # type: ignore[arg-type]
        made[kind] = found
    return found


def record_build(app: Flask, settings: Settings) -> None:
    """``flask_svc_build_info``: the build, and the model the app serves when one is loaded (its identity is on the
    app for /version and /readyz)."""
    model: ModelIdentity | None = app.extensions.get(MODEL_IDENTITY_EXTENSION)
    served = (model.name, model.version, model.sha256) if model else ("", "", "")
    instruments_of(app).build_info.labels(
        settings.version, settings.git_commit, platform.python_version(), *served
    ).set(1)
