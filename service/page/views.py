"""The page at ``/`` (issue 16): a server-rendered page for browsers, the info document as JSON for everyone else.

Everything the page shows is rendered on the server, so it works with JavaScript off; the form posts back to ``/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from flask.typing import ResponseReturnValue

from service import uploads
from service.analysis import AnalysisOptions
from service.analysis.stopwords import CHOICES as STOPWORD_CHOICES
from service.analysis.stopwords import DEFAULT as DEFAULT_STOPWORDS
from service.analysis.web.views import count_words
from service.batch.access import Mode
from service.batch.states import TERMINAL
from service.batch.web.views import BATCH_ACCESS_EXTENSION, BATCH_EXTENSION
from service.core.current import current_lifecycle, current_settings
from service.core.ops import info_document
from service.inference.web import MODEL_EXTENSION
from service.names import ANALYZE, JOBS_PATH
from service.problems import Problem

WEB = Path(__file__).resolve().parent

# The form's words for each stop-word choice the API accepts (a choice without words fails here, at import).
STOPWORD_OPTIONS = tuple(
    (choice, {"none": "keep all words", "en": "drop common English words"}[choice]) for choice in STOPWORD_CHOICES
)
HTML = "text/html"
TOP_MAX = 100
# Up to this many features the Predict form has a number field for each (Iris: four); a JSON tensor always works.
FEATURE_FIELDS_MAX = 16
# Past this size the submitted text is not echoed back into the textarea: the page stays small.
REFILL_MAX_BYTES = 64 * 1024
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # Swagger UI draws its icons as data: SVGs in its stylesheet
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
# Browser-facing blueprints: every response of theirs gets nosniff, not only the HTML ones.
PAGE_BLUEPRINTS = ("home", "docs", "toggles")

bp = Blueprint("home", __name__, template_folder=WEB / "templates", static_folder=WEB / "static", static_url_path="/ui")
# The debug toggles: registered only with FLASK_SVC_DEBUG_ENDPOINTS=true, next to the debug endpoints.
toggles = Blueprint("toggles", __name__)


def wants_html() -> bool:
    """A browser asks for text/html above JSON; curl's */* and API clients get the JSON document."""
    return request.accept_mimetypes.best_match(["application/json", HTML]) == HTML


@bp.get("/")
def home() -> ResponseReturnValue:
    response = Response(_page(), mimetype=HTML) if wants_html() else jsonify(info_document().model_dump())
    response.vary.add("Accept")
    return response


@bp.post("/")
def analyze_form() -> ResponseReturnValue:
    form: dict[str, str] = {}
    try:
        parts = uploads.form_parts(current_settings().max_upload_bytes)
        form = {name: _text(parts.get(name, b"")) for name in ("top", "stopwords")}
        text = parts.get("text", b"")
        if len(text) <= REFILL_MAX_BYTES:
            form["text"] = _text(text)
        result = _analyze(text, parts.get("file", b""), form)
    except Problem as problem:
        page = _page(form=form, error=problem)
        return Response(page, status=problem.status, headers=problem.headers, mimetype=HTML)
    return Response(_page(form=form, result=result), mimetype=HTML)


@bp.post("/ui/predict")
def predict_form() -> ResponseReturnValue:
    """The page's Predict form (with a model served): the rows checked and predicted as /api/v1/predict does."""
    if MODEL_EXTENSION not in current_app.extensions:
        raise Problem(404, "not_found", "no model is served here (FLASK_SVC_MODEL_PATH is not set)")
    from service.inference.web import views as inference  # numpy and scikit-learn: only with a model

    form: dict[str, str] = {}
    try:
        parts = uploads.form_parts(inference.max_body_bytes(inference.served(), current_settings()))
        form = {name: _text(value) for name, value in parts.items() if name == "tensor" or name.startswith("feature-")}
        rows = _rows(form, inference.served().features)
        prediction = list(zip(rows, inference.predict_instances(rows), strict=True))
    except Problem as problem:
        page = _page(predict_form=form, predict_error=problem)
        return Response(page, status=problem.status, headers=problem.headers, mimetype=HTML)
    return Response(_page(predict_form=form, prediction=prediction), mimetype=HTML)


def _rows(form: dict[str, str], features: int) -> Any:
    """The instances the form gives: its JSON tensor when filled in (one row, or a list of rows), else one row of
    the number fields. Only the JSON and the numbers are read here; the model's checks name what else is wrong."""
    tensor = form.get("tensor", "").strip()
    if tensor:
        try:
            value = json.loads(tensor)
        except ValueError as error:
            raise Problem(400, "invalid_json", f"“JSON tensor” is not valid JSON: {error}") from None
        if isinstance(value, dict) and "instances" in value:
            value = value["instances"]
        if isinstance(value, list) and value and not any(isinstance(item, list) for item in value):
            value = [value]  # one row
        return value
    row: list[float] = []
    for index in range(features):
        raw = form.get(f"feature-{index}", "").strip()
        try:
            row.append(float(raw))
        except ValueError:
            shown = f"“{raw}” is not a number" if raw else "is empty"
            raise Problem(422, "unprocessable", f"Feature {index + 1} {shown}; or give a JSON tensor") from None
    return [row]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _top(raw: str) -> int:
    try:
        top = int(raw or "10")
    except ValueError:
        top = 0
    if not 1 <= top <= TOP_MAX:
        raise Problem(422, "unprocessable", f"“Top words” must be a whole number from 1 to {TOP_MAX}")
    return top


def _analyze(text: bytes, upload: bytes, form: dict[str, str]) -> dict[str, Any]:
    top = _top(form.get("top", ""))
    stopwords = form.get("stopwords") or DEFAULT_STOPWORDS
    if stopwords not in STOPWORD_CHOICES:
        raise Problem(422, "unprocessable", f"“Stop words” must be {' or '.join(STOPWORD_CHOICES)}")
    pieces = [piece for piece in (text, upload) if piece.strip()]
    if not pieces:
        raise Problem(400, "empty_text", "Paste some text or choose a file first")
    # A newline between the pasted text and the file, so their edge words stay apart.
    chunks = [pieces[0], *(b"\n" + piece for piece in pieces[1:])]
    # The same analysis as POST /api/v1/analyze, measured under its label.
    counts, stats, elapsed_ms = count_words(ANALYZE, chunks, AnalysisOptions(stopwords=stopwords))
    return {
        "bytes": stats.bytes,
        "tokens": counts.total,
        "unique": counts.unique,
        "top": counts.most_common(top),
        "elapsed_ms": elapsed_ms,
    }


def _uptime(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _metrics_url() -> str:
    settings = current_settings()
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return f"{request.scheme}://{host}:{settings.metrics_port}/metrics"


def _chosen_stopwords(form: dict[str, str]) -> str:
    """The stop-word option the form shows selected: the one submitted when the API accepts it, else the default."""
    chosen = form.get("stopwords")
    return chosen if chosen in STOPWORD_CHOICES else DEFAULT_STOPWORDS


def _page(
    form: dict[str, str] | None = None,
    result: dict[str, Any] | None = None,
    error: Problem | None = None,
    *,
    predict_form: dict[str, str] | None = None,
    prediction: list[tuple[Any, Any]] | None = None,
    predict_error: Problem | None = None,
) -> str:
    settings = current_settings()
    state = current_lifecycle()
    ready, status, reason = state.readiness()
    info = info_document()
    return render_template(
        "home.html",
        settings=settings,
        info=info,
        uptime=_uptime(info.uptime_seconds),
        ready=ready,
        readiness=status,
        readiness_reason=reason,
        fault=state.fault,
        metrics_url=_metrics_url(),
        form=form or {},
        top_max=TOP_MAX,
        stopword_options=STOPWORD_OPTIONS,
        stopwords_selected=_chosen_stopwords(form or {}),
        result=result,
        error=error,
        batch=_batch_section(),
        model=_model_section(),
        predict_form=predict_form or {},
        prediction=prediction,
        predict_error=predict_error,
    )


def _batch_section() -> dict[str, Any] | None:
    """What the page's batch section needs, when batch jobs are served: where they are, and whether a token is asked
    (every access mode but ``none``)."""
    gate = current_app.extensions.get(BATCH_ACCESS_EXTENSION)
    if BATCH_EXTENSION not in current_app.extensions or gate is None:
        return None
    terminal = " ".join(sorted(TERMINAL))
    return {"jobs_path": JOBS_PATH, "token": gate.mode is not Mode.NONE, "terminal": terminal}


def _model_section() -> dict[str, Any] | None:
    """What the Predict form needs, when a model is served: its identity and how many features it takes."""
    model = current_app.extensions.get(MODEL_EXTENSION)
    if model is None:
        return None
    fields = model.features if model.features <= FEATURE_FIELDS_MAX else 0
    return {"name": model.name, "version": model.version, "sha256": model.sha256, "fields": fields}


def _switch(field: str) -> bool:
    value = request.form.get(field, "")
    if value not in ("on", "off"):
        raise Problem(422, "unprocessable", f'form field "{field}" must be on or off')
    return value == "on"


@toggles.post("/ui/readiness")
def toggle_readiness() -> ResponseReturnValue:
    """The page's readiness buttons: the same switch as /readyz/disable and /readyz/enable, then back to the page."""
    current_lifecycle().manually_unready = not _switch("ready")
    return redirect("/", 303)


@toggles.post("/ui/fault")
def toggle_fault() -> ResponseReturnValue:
    current_lifecycle().fault = _switch("fault")
    return redirect("/", 303)


def secure_headers(response: Response) -> Response:
    """CSP and no framing on every HTML response; nosniff on those and on everything the page blueprints serve."""
    html = response.mimetype == HTML  # parsed from Content-Type on every read: once per response
    if html:
        # setdefault: a stricter policy already set (/echo's sandbox) stays.
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    if html or request.blueprint in PAGE_BLUEPRINTS:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
