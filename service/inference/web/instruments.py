"""Model serving's metrics, added to the app through ``service.metrics.feature_instruments``."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram

from service.metrics import declare_series

INFERENCE_OUTCOMES = ("ok", "invalid", "error")
# Model latency: 100 µs (one row through a small model) to 5 s (a large batch through a large one).
INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
INSTANCE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


@dataclass(frozen=True)
class InferenceInstruments:
    inference_duration: Histogram
    inference_instances: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> InferenceInstruments:
        return cls(
            inference_duration=Histogram(
                "flask_svc_inference_duration_seconds",
                "Time to check a request against the model and predict, by model and outcome (ok, invalid, error)",
                ["model", "outcome"],
                buckets=INFERENCE_BUCKETS,
                registry=registry,
            ),
            inference_instances=Histogram(
                "flask_svc_inference_instances",
                "Instances (rows) per accepted inference request",
                ["model"],
                buckets=INSTANCE_BUCKETS,
                registry=registry,
            ),
        )

    def declare(self, model: str) -> None:
        """The served model's series, at 0 from the start."""
        declare_series(self.inference_duration, [(model, outcome) for outcome in INFERENCE_OUTCOMES])
        declare_series(self.inference_instances, [(model,)])
