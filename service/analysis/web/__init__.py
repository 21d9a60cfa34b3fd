"""The text endpoints' web layer: the views (``views``), their request and response models (``schemas``) and
metrics (``instruments``). The pipeline itself, in ``service.analysis``, knows nothing of the web."""

from __future__ import annotations

from typing import Any

from flask_openapi3.openapi import OpenAPI

from service.analysis import AnalysisOptions, analyze_chunks
from service.analysis.web import views
from service.analysis.web.instruments import AnalysisInstruments
from service.config import Settings
from service.core.openapi import amend
from service.metrics import feature_instruments
from service.names import ANALYSIS_PATHS


def init_app(app: OpenAPI, settings: Settings) -> None:
    feature_instruments(app, AnalysisInstruments)  # its series exist from the start, at 0
    app.register_api(views.bp)
    amend(app, _request_bodies)
    warm_up()


def _request_bodies(document: dict[str, Any]) -> None:
    """The text endpoints' three request-body forms, which the views read themselves."""
    for path in ANALYSIS_PATHS:
        document["paths"][path]["post"]["requestBody"] = views.request_body_spec()


def warm_up() -> None:
    """Run the pipeline once so the first real request pays no first-use cost (regex compile, imports)."""
    analyze_chunks([b"Warm-up: caf\xc3\xa9 na\xc3\xafve 42 don't"], AnalysisOptions(stopwords="en"))
