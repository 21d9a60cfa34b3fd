"""Batch's settings section (``FLASK_SVC_BATCH_*``), composed into ``service.config.Settings``, and the checks that
need several of its values at once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import AfterValidator

from service.config_fields import AbsolutePath, BaseUrl, ConfigError, JsonObject, Section, setting

_OBJECT_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")


def _object_name(value: str) -> str:
    """A Kubernetes object name (a DNS subdomain)."""
    if not _OBJECT_NAME.fullmatch(value):
        raise ValueError(value)
    return value


BatchRunner = Literal["local", "kubernetes", "off"]
BatchAuth = Literal["auto", "kubernetes", "token", "none"]
ObjectName = Annotated[str, AfterValidator(_object_name)]


class BatchSettings(Section):
    batch_runner: BatchRunner = setting(
        "FLASK_SVC_BATCH_RUNNER",
        "local",
        "Who runs the batch pipeline's stages: subprocesses (`local`), Kubernetes Jobs, or nobody (`off`: no "
        "`/api/v1/jobs`).",
    )
    batch_data_dir: AbsolutePath = setting(
        "FLASK_SVC_BATCH_DATA_DIR",
        "",
        "The batch jobs' shared directory: uploads, stage outputs, job records. Unset: `/tmp/flask-svc-<uid>/batch`. "
        "Checked like `PROMETHEUS_MULTIPROC_DIR`.",
        accepts="an absolute directory path",
    )
    batch_max_upload_bytes: int = setting(
        "FLASK_SVC_BATCH_MAX_UPLOAD_BYTES",
        1 << 30,
        "Largest batch upload (`POST /api/v1/jobs`); larger ones get 413 and nothing is kept.",
        unit="bytes",
        ge=1,
        le=1 << 40,
    )
    batch_callback_url: BaseUrl = setting(
        "FLASK_SVC_BATCH_CALLBACK_URL",
        "",
        "Where stages report back (the Service's URL); empty: `http://127.0.0.1:PORT`.",
        accepts="an http(s) base URL, or empty",
    )
    batch_callback_key_file: AbsolutePath = setting(
        "FLASK_SVC_BATCH_CALLBACK_KEY_FILE",
        "",
        "File holding the key each job's callback secret derives from (the chart mounts a Secret); empty: "
        "`.callback-key` in the data directory, made on first use.",
        accepts="an absolute file path, or empty",
    )
    batch_auth: BatchAuth = setting(
        "FLASK_SVC_BATCH_AUTH",
        "auto",
        "Who may use `/api/v1/jobs`: the cluster decides (`kubernetes`: TokenReview and SubjectAccessReview), "
        "static bearer tokens (`token`), or anyone (`none`); `auto` is `none` on a loopback bind (`make run`) and "
        "otherwise refuses every job request.",
    )
    batch_auth_tokens_file: AbsolutePath = setting(
        "FLASK_SVC_BATCH_AUTH_TOKENS_FILE",
        "",
        "With `FLASK_SVC_BATCH_AUTH=token`: the file of bearer tokens, one `token[,username[,admin]]` a line.",
        accepts="an absolute file path, or empty",
    )
    batch_reconcile_seconds: float = setting(
        "FLASK_SVC_BATCH_RECONCILE_SECONDS",
        5,
        "How often each worker moves every unfinished job on from what the volume and the runner say.",
        unit="seconds",
        ge=0.1,
        le=3600,
    )
    batch_job_template: JsonObject = setting(
        "FLASK_SVC_BATCH_JOB_TEMPLATE",
        "",
        "The stage Jobs' spec (image, security context, resources, volume, limits): set by the chart.",
        accepts="a JSON object, or empty",
    )
    # Batch bounds (issue 20): how much the pipeline may hold and run, for how long, and who reconciles.
    batch_max_running_stages: int = setting(
        "FLASK_SVC_BATCH_MAX_RUNNING_STAGES",
        4,
        "Most batch jobs running a stage at once (counted on the shared volume: cluster-wide for the `kubernetes` "
        "runner); later jobs wait `queued` and start in submission order.",
        ge=1,
        le=10_000,
    )
    batch_max_active_jobs_per_owner: int = setting(
        "FLASK_SVC_BATCH_MAX_ACTIVE_JOBS_PER_OWNER",
        20,
        "Most unfinished jobs one owner may have; another upload gets 429 with `Retry-After`.",
        ge=1,
        le=1_000_000,
    )
    batch_max_stored_bytes: int = setting(
        "FLASK_SVC_BATCH_MAX_STORED_BYTES",
        8 << 30,
        "Most bytes the jobs may keep in the data directory; an upload that would pass it gets 507 and nothing "
        "is kept (keep it below the volume's size).",
        unit="bytes",
        ge=1,
        le=1 << 50,
    )
    batch_retention_seconds: float = setting(
        "FLASK_SVC_BATCH_RETENTION_SECONDS",
        86_400,
        "A finished job (its record and files) is removed this long after it finished.",
        unit="seconds",
        ge=1,
        le=365 * 86_400,
    )
    batch_incoming_retention_seconds: float = setting(
        "FLASK_SVC_BATCH_INCOMING_RETENTION_SECONDS",
        3600,
        "An upload left half-written in `.incoming/` (its worker was killed) is removed once untouched this long.",
        unit="seconds",
        ge=1,
        le=365 * 86_400,
    )
    batch_lease_name: ObjectName = setting(
        "FLASK_SVC_BATCH_LEASE_NAME",
        "flask-svc-batch-reconciler",
        "The `coordination.k8s.io` Lease that elects the one pod reconciling (the `kubernetes` runner).",
        accepts="a Kubernetes object name (lowercase letters, digits, '-', '.')",
    )
    batch_lease_seconds: float = setting(
        "FLASK_SVC_BATCH_LEASE_SECONDS",
        15,
        "How long a reconciler's Lease holds without renewal before another pod takes over.",
        unit="seconds",
        ge=1,
        le=3600,
    )
    # Batch shards (issue 22): one upload split into byte ranges counted in parallel, then merged.
    batch_shard_bytes: int = setting(
        "FLASK_SVC_BATCH_SHARD_BYTES",
        64 << 20,
        "Target size of one batch shard: an upload is split into one shard per this many bytes begun (a map "
        "pod's memory is bounded by its shard's vocabulary, not the upload's size).",
        unit="bytes",
        ge=1 << 16,
        le=1 << 40,
    )
    batch_max_shards: int = setting(
        "FLASK_SVC_BATCH_MAX_SHARDS",
        256,
        "Most shards of one upload (the map stage's `completions`); past it shards grow beyond the target size.",
        ge=1,
        le=10_000,
    )
    batch_parallelism: int = setting(
        "FLASK_SVC_BATCH_PARALLELISM",
        0,
        "Shards of one job counted at once: the local runner's worker processes (0: the CPU count), the Indexed "
        "Job's `parallelism` (0: one; the chart sets `batch.parallelism`).",
        ge=0,
        le=10_000,
    )

    def check_batch(self, environ: Mapping[str, str]) -> None:
        """What no single value says: a ``ConfigError`` naming the variable when the values cannot work together."""
        if self.batch_runner == "kubernetes":
            for needed, value in (
                ("FLASK_SVC_BATCH_JOB_TEMPLATE", self.batch_job_template),
                ("FLASK_SVC_BATCH_CALLBACK_URL", self.batch_callback_url),
            ):
                if not value:
                    raise ConfigError(f"{needed} is empty: FLASK_SVC_BATCH_RUNNER=kubernetes needs it")
        if self.batch_auth == "kubernetes":
            from service.batch.access_kube import in_cluster

            if not in_cluster(environ):
                raise ConfigError(
                    "FLASK_SVC_BATCH_AUTH='kubernetes' needs a pod's service account (KUBERNETES_SERVICE_HOST and "
                    "its token); outside a cluster use token or none"
                )
        if self.batch_auth == "token":
            from service.batch.access_tokens import read_token_file

            try:
                read_token_file(self.batch_auth_tokens_file)
            except (OSError, ValueError) as error:
                reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
                raise ConfigError(
                    f"FLASK_SVC_BATCH_AUTH_TOKENS_FILE={self.batch_auth_tokens_file!r} is unusable with "
                    f"FLASK_SVC_BATCH_AUTH=token: {reason}"
                ) from None
        if self.batch_runner == "kubernetes" and self.batch_lease_seconds <= 2 * self.batch_reconcile_seconds:
            raise ConfigError(
                f"FLASK_SVC_BATCH_LEASE_SECONDS={self.batch_lease_seconds:g} must exceed twice "
                f"FLASK_SVC_BATCH_RECONCILE_SECONDS ({self.batch_reconcile_seconds:g}): "
                "the Lease is renewed once per round"
            )
