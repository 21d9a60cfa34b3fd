"""Model serving's web layer: the Open Inference Protocol (V2) and KServe V1 views (``views``) and their metrics
(``instruments``). Its views import numpy and scikit-learn, so they are imported only when a model is configured."""

from __future__ import annotations

import logging
import subprocess
import sys

from flask_openapi3.openapi import OpenAPI

from service.config import Settings
from service.core.openapi import amend
from service.core.schemas import ModelIdentity
from service.metrics import feature_instruments
from service.names import MODEL_IDENTITY_EXTENSION

MODEL_EXTENSION = "flask_svc.model"  # app.extensions: the ServedModel, when FLASK_SVC_MODEL_PATH names one
log = logging.getLogger("service.app")  # the logger this line has always had (log fields stay the same)
_WORKER_BOOT_ERROR = 3  # gunicorn halts the whole server when a worker exits with this


def check_before_workers(settings: Settings) -> str | None:
    """Check the model file before any worker starts — a pickle is refused unopened, an untrusted type named — so a
    bad file stops the server with one line. In a process of its own: importing numpy starts threads, and the master
    must have none when it forks. Each worker then loads the model (after fork, before it is ready)."""
    if not settings.model_enabled:
        return None
    check = [sys.executable, "-m", "service.inference.loading", settings.model_path]
    check += ["--allow-pickle"] if settings.model_allow_pickle else []
    check += [arg for name in settings.model_trusted_type_names for arg in ("--trusted-type", name)]
    checked = subprocess.run(check, capture_output=True, text=True, check=False)
    if checked.returncode == 0:
        return None
    reason = (checked.stderr.strip().splitlines() or [f"the check exited {checked.returncode}"])[-1]
    return f"model refused: {reason}"


def init_app(app: OpenAPI, settings: Settings) -> None:
    """Load the model in this worker, before the app reports started, and serve it. The master checked the file
    before forking, so a refusal here is rare (the file changed in between); it ends the worker with one line and
    gunicorn's boot-error status, which stops the server."""
    if not settings.model_enabled:
        return
    from service.inference.loading import ModelRefused
    from service.inference.web import openapi, views
    from service.inference.web.instruments import InferenceInstruments

    try:
        model = views.load_into(app, settings)
    except ModelRefused as error:
        log.critical("model refused: %s", error)
        raise SystemExit(_WORKER_BOOT_ERROR) from None
    app.extensions[MODEL_IDENTITY_EXTENSION] = ModelIdentity(
        name=model.name, version=model.version, sha256=model.sha256
    )
    feature_instruments(app, InferenceInstruments).declare(model.name)
    app.register_api(views.bp)
    amend(app, openapi.document, own_errors=True)  # the model routes answer their 422s as application/json
