"""The text endpoints' metrics, added to the app through ``service.metrics.feature_instruments``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from prometheus_client import CollectorRegistry, Counter, Histogram

from service.metrics import declare_series
from service.names import ANALYSIS_ENDPOINTS

ANALYSIS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class AnalysisInstruments:
    analyzed_bytes: Counter
    tokens: Counter
    analysis_duration: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AnalysisInstruments:
        made = cls(
            analyzed_bytes=Counter("flask_svc_analyzed_bytes", "Bytes of text analysed", registry=registry),
            tokens=Counter("flask_svc_tokens", "Words counted by the analysis pipeline", registry=registry),
            analysis_duration=Histogram(
                "flask_svc_analysis_duration_seconds",
                "Time spent in the analysis pipeline per request",
                ["endpoint"],
                buckets=ANALYSIS_BUCKETS,
                registry=registry,
            ),
        )
        declare_series(made.analysis_duration, [(endpoint,) for endpoint in ANALYSIS_ENDPOINTS])
        return made

    @cached_property
    def durations(self) -> dict[str, Histogram]:
        """``analysis_duration``'s series per endpoint, looked up once: ``labels()`` costs more than an observation."""
        return {endpoint: self.analysis_duration.labels(endpoint) for endpoint in ANALYSIS_ENDPOINTS}
