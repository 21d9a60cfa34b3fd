"""``flask_http_request_total`` derived from the request duration histogram when ``/metrics`` is read.

The count is the histogram's ``_count`` summed over routes, so it is not written beside the histogram (one
shared-memory write less per request). Read by the app's own registry (``service.metrics``, outside gunicorn) and by
the gunicorn master, which serves ``/metrics`` (``service.server.metrics_server``) and imports nothing of the web
stack: so this module imports nothing but prometheus_client, and that only when a scrape asks. Names, help and
labels are prometheus-flask-exporter's, as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from prometheus_client.metrics_core import Metric

REQUEST_DURATION = "flask_http_request_duration_seconds"
REQUEST_TOTAL = "flask_http_request"
REQUEST_TOTAL_HELP = "Total number of HTTP requests"


class WithRequestTotals:
    """A collector: what ``source`` collects, plus ``flask_http_request_total`` derived from it (nothing until a
    request was counted, as a labelled counter without children)."""

    def __init__(self, source: Callable[[], Iterable[Metric]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import CounterMetricFamily

        totals: dict[tuple[str, str], float] = {}
        for family in self.source():
            if family.name == REQUEST_DURATION:
                for sample in family.samples:
                    if sample.name == REQUEST_DURATION + "_count":
                        key = (sample.labels["method"], sample.labels["status"])
                        totals[key] = totals.get(key, 0.0) + sample.value
            yield family
        if totals:
            derived = CounterMetricFamily(REQUEST_TOTAL, REQUEST_TOTAL_HELP, labels=("method", "status"))
            for labels, value in sorted(totals.items()):
                derived.add_metric(labels, value)
            yield derived
