"""Batch's web layer and composition root: ``init_app`` chooses the runner, builds the coordinator, the access gate
and this worker's reconcile loop from the settings, and serves the API (``views``, ``schemas``); ``instruments``
holds its metrics. The pipeline itself, in ``service.batch``, knows nothing of the web."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask_openapi3.openapi import OpenAPI

from service.analysis.web.views import request_body_spec
from service.batch import access, local
from service.batch.coordinator import Coordinator
from service.batch.leader import make_leader
from service.batch.progress import Limits
from service.batch.reconciler import Reconciler
from service.batch.runner import Runner
from service.batch.web import views
from service.batch.web.instruments import BatchInstruments, MetricsObserver
from service.batch.web.views import BATCH_ACCESS_EXTENSION, BATCH_EXTENSION, BATCH_RECONCILER_EXTENSION
from service.config import ConfigError, Settings, address
from service.core.openapi import amend
from service.metrics import feature_instruments
from service.names import JOBS_PATH, LIFECYCLE_EXTENSION


def init_app(app: OpenAPI, settings: Settings) -> None:
    """Serve the batch API with the configured runner and start this worker's reconcile loop; idempotent."""
    if settings.batch_runner == "off" or BATCH_EXTENSION in app.extensions:
        return
    coordinator = Coordinator.open(
        Path(settings.batch_data_dir),
        make_runner(settings),
        settings.batch_callback_key_file,
        stage_environment(settings),
        MetricsObserver(feature_instruments(app, BatchInstruments)),
        _limits(settings),
    )
    mode = access.resolve_mode(settings.batch_auth, settings.host)
    try:
        gate = make_gate(mode, settings.batch_auth_tokens_file, settings.pod_namespace)
    except (OSError, ValueError) as error:
        raise ConfigError(f"FLASK_SVC_BATCH_AUTH={settings.batch_auth} cannot work: {error}") from None
    if settings.batch_runner == "local":  # stopped after the reconciler, which may start stages until it stops
        app.extensions[LIFECYCLE_EXTENSION].on_stop("batch stage host", local.stop_stage_host)
    reconciler = Reconciler(coordinator, settings.batch_reconcile_seconds, make_leader(settings))
    reconciler.start()
    app.extensions[LIFECYCLE_EXTENSION].on_stop("batch reconciler", reconciler.stop)
    app.extensions[BATCH_ACCESS_EXTENSION] = gate
    app.extensions[BATCH_EXTENSION] = coordinator
    app.extensions[BATCH_RECONCILER_EXTENSION] = reconciler
    app.register_api(views.bp)
    amend(app, _upload_body)


def startup_notes(settings: Settings) -> list[str]:
    """The start log's warning when batch jobs will be refused for want of an access mode."""
    if settings.batch_runner == "off":
        return []
    note = access.startup_note(access.resolve_mode(settings.batch_auth, settings.host))
    return [note] if note else []


def make_gate(mode: access.Mode, tokens_file: str, namespace: str) -> access.Gate:
    """The gate for ``mode``; ``OSError``/``ValueError`` when it cannot work (no token file, no service account)."""
    if mode is access.Mode.KUBERNETES:
        from service.batch.access_kube import SA_NAMESPACE, KubeReviews, KubernetesGate

        return KubernetesGate(KubeReviews(), namespace or SA_NAMESPACE.read_text().strip())
    if mode is access.Mode.TOKEN:
        from service.batch.access_tokens import TokenGate

        return TokenGate(tokens_file)
    if mode is access.Mode.NONE:
        return access.OpenGate()
    return access.ClosedGate()


def make_runner(settings: Settings) -> Runner:
    """The configured runner; the Kubernetes client is imported only when that runner is chosen."""
    if settings.batch_runner == "kubernetes":
        from service.batch.kube import KubernetesRunner

        return KubernetesRunner(settings)
    from service.batch.local import LocalRunner

    return LocalRunner(Path(settings.batch_data_dir))


def stage_environment(settings: Settings) -> dict[str, str]:
    """What a stage process is started with: where the volume is, where to report, how to log and trace."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(
        settings.host, settings.host
    )  # a wildcard bind answers on loopback
    return {
        "FLASK_SVC_BATCH_DATA_DIR": settings.batch_data_dir,
        "FLASK_SVC_BATCH_CALLBACK_URL": settings.batch_callback_url or f"http://{address(host, settings.port)}",
        "FLASK_SVC_MAX_VOCABULARY": str(settings.max_vocabulary),
        "LOG_FORMAT": settings.log_format,
        "LOG_LEVEL": settings.log_level,
        **settings.otel_stage_environment,
    }


def _limits(settings: Settings) -> Limits:
    return Limits(
        max_running_stages=settings.batch_max_running_stages,
        max_active_per_owner=settings.batch_max_active_jobs_per_owner,
        max_stored_bytes=settings.batch_max_stored_bytes,
        retention_seconds=settings.batch_retention_seconds,
        incoming_retention_seconds=settings.batch_incoming_retention_seconds,
        shard_bytes=settings.batch_shard_bytes,
        max_shards=settings.batch_max_shards,
    )


def _upload_body(document: dict[str, Any]) -> None:
    """The upload's two body forms, which the view reads itself."""
    document["paths"][JOBS_PATH]["post"]["requestBody"] = request_body_spec(("text/plain", "multipart/form-data"))
