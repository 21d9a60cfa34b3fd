"""What users pick instead: FastAPI on uvicorn (bench.targets), written the way its documentation suggests, with
flask-svc's endpoint shapes, pydantic models and analysis pipeline on the body in 16 KiB slices: only the web framework
differs. Runs in the bench virtualenv (.tools/bench-venv), never in the project's."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request

import service
from service.analysis import AnalysisOptions, analyze_chunks


def _models_only(*packages: str) -> None:
    """Stand-ins for the web packages, whose ``__init__`` wires a Flask app (this venv has no Flask): their models
    modules are plain pydantic and import as they are."""
    root = Path(service.__file__).parent
    for name in packages:
        stand_in = types.ModuleType(name)
        stand_in.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
        sys.modules.setdefault(name, stand_in)


_models_only("service.core", "service.analysis.web")

from service.analysis.web.schemas import AnalyzeQuery, AnalyzeResult, WordFrequency  # noqa: E402
from service.core.schemas import Health  # noqa: E402
from service.names import ANALYZE_PATH, CHUNK_BYTES, LIVEZ, READYZ  # noqa: E402

app = FastAPI(title="flask-svc bench: FastAPI", docs_url=None, redoc_url=None)


@app.get(LIVEZ)
@app.get(READYZ)
async def livez() -> Health:
    return Health(status="ok")


@app.post(ANALYZE_PATH)
async def analyze(request: Request, query: Annotated[AnalyzeQuery, Query()]) -> AnalyzeResult:
    started = time.perf_counter()
    body = await request.body()
    chunks = (body[start : start + CHUNK_BYTES] for start in range(0, len(body), CHUNK_BYTES))
    options = AnalysisOptions(lowercase=query.lowercase, min_length=query.min_length, stopwords=query.stopwords)
    analysis = analyze_chunks(chunks, options)
    return AnalyzeResult(
        bytes=analysis.stats.bytes,
        tokens=analysis.counts.total,
        unique=analysis.counts.unique,
        top=[WordFrequency(word=w, count=c) for w, c in analysis.counts.most_common(query.top)],
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )
