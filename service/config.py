"""Every setting the service reads, declared once on one typed, frozen object: ``Settings``.

pydantic-settings reads the environment; each field names its variable (``validation_alias``), its default, its
bounds and what it means. ``load_settings`` turns a bad value into ``ConfigError``, one line naming the variable and
what it accepts (derived from the field's type and bounds), so the process can stop before it binds a port. The
README's configuration table is generated from the same fields (``python -m service.config``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from annotated_types import Ge, Le
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUseDefault

from service import __version__
from service.privatedirs import NotPrivate, ensure_directory

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["json", "console"]
TRACES_EXPORTERS = ("otlp", "console")
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


class ConfigError(ValueError):
    """A variable holds a value the service cannot use; the message names it."""


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise
    return value


def address(host: str, port: int) -> str:
    """``host:port`` as a socket address or URL authority: an IPv6 literal in brackets."""
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass  # a host name
    return f"{host}:{port}"


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or "\x00" in value:
        raise ValueError(value)
    return value


def _base_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise ValueError(value)
    return value.rstrip("/")


def _json_object(value: str) -> str:
    if not isinstance(json.loads(value), dict):  # JSONDecodeError is a ValueError
        raise ValueError(value)
    return value


_MODEL_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _model_word(value: str) -> str:
    if not _MODEL_WORD.fullmatch(value):
        raise ValueError(value)
    return value


_OBJECT_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")


def _object_name(value: str) -> str:
    """A Kubernetes object name (a DNS subdomain)."""
    if not _OBJECT_NAME.fullmatch(value):
        raise ValueError(value)
    return value


def _type_names(value: str) -> str:
    """A comma-separated list of dotted type names, kept as written (``Settings.model_trusted_type_names`` splits it:
    pydantic-settings would read a list-typed variable as JSON)."""
    if not all(_DOTTED_NAME.fullmatch(name.strip()) for name in value.split(",") if name.strip()):
        raise ValueError(value)
    return value


def _exporter(value: str) -> str:
    """OTEL_TRACES_EXPORTER lists exporters; the first one is used, ``none`` turns tracing off."""
    first = value.lower().split(",")[0].strip()
    if first not in (*TRACES_EXPORTERS, "none", ""):
        raise ValueError(value)
    return first


Host = Annotated[str, AfterValidator(_host)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
Exporter = Annotated[str, AfterValidator(_exporter)]
BaseUrl = Annotated[str, AfterValidator(_base_url)]
JsonObject = Annotated[str, AfterValidator(_json_object)]
BatchRunner = Literal["local", "kubernetes", "off"]
BatchAuth = Literal["auto", "kubernetes", "token", "none"]
ModelWord = Annotated[str, AfterValidator(_model_word)]
TypeNames = Annotated[str, AfterValidator(_type_names)]
ObjectName = Annotated[str, AfterValidator(_object_name)]


def setting(
    env: str,
    default: Any,
    meaning: str,
    *,
    accepts: str | None = None,
    unit: str | None = None,
    table: bool = True,
    ge: float | None = None,
    le: float | None = None,
) -> Any:
    """A field read from ``env``. ``accepts`` is derived from the type and bounds unless given; ``unit`` names
    what a number counts (seconds, bytes, …); ``table=False`` keeps a variable out of the README's table."""
    extra: dict[str, Any] = {"table": table}
    if accepts is not None:
        extra["accepts"] = accepts
    if unit is not None:
        extra["unit"] = unit
    return Field(default, validation_alias=env, description=meaning, json_schema_extra=extra, ge=ge, le=le)


class Settings(BaseModel):
    # A plain model read from the environment by load_settings (every field is a scalar under its variable's exact
    # name): pydantic-settings' sources added ~0.1 s of imports to every start for nothing this needs.
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False, validate_default=False)

    host: Host = setting(
        "HOST", "0.0.0.0", "Bind address (`make run` uses 127.0.0.1).", accepts="an IP address or host name"
    )
    port: int = setting("PORT", 8080, "Application port.", unit="port", ge=1, le=65535)
    metrics_port: int = setting(
        "METRICS_PORT", 9797, "Prometheus `/metrics` port (master).", unit="port", ge=1, le=65535
    )
    workers: int = setting("WEB_CONCURRENCY", 1, "gunicorn worker processes.", ge=1, le=64)
    threads: int = setting("GUNICORN_THREADS", 4, "Threads per worker.", ge=1, le=256)
    timeout: int = setting(
        "GUNICORN_TIMEOUT", 30, "A worker silent for this long is killed and replaced.", unit="seconds", ge=1, le=3600
    )
    graceful_timeout: int = setting(
        "GUNICORN_GRACEFUL_TIMEOUT",
        20,
        "Time in-flight requests get to finish after SIGTERM.",
        unit="seconds",
        ge=1,
        le=3600,
    )
    keepalive: int = setting(
        "GUNICORN_KEEPALIVE", 5, "Idle keep-alive connection timeout.", unit="seconds", ge=0, le=600
    )
    log_level: LogLevel = setting("LOG_LEVEL", "info", "Log level.")
    log_format: LogFormat = setting("LOG_FORMAT", "json", "`json` lines for machines, `console` for humans.")
    multiproc_dir: AbsolutePath = setting(
        "PROMETHEUS_MULTIPROC_DIR",
        "",
        "Where workers write metric files; wiped at start. Unset: `/tmp/flask-svc-<uid>/metrics`. Refused unless "
        "a directory of the service's user that nobody else may write (never a symbolic link); created 0700.",
        accepts="an absolute directory path",
    )
    max_upload_bytes: int = setting(
        "FLASK_SVC_MAX_UPLOAD_BYTES",
        10 * 1024 * 1024,
        "Largest request body; larger ones get 413.",
        unit="bytes",
        ge=1,
        le=1 << 30,
    )
    max_vocabulary: int = setting(
        "FLASK_SVC_MAX_VOCABULARY",
        100_000,
        "Most distinct words one request may hold; more get 413 (bounds memory: ~200 B per word).",
        ge=1,
        le=10_000_000,
    )
    read_timeout: float = setting(
        "FLASK_SVC_READ_TIMEOUT_SECONDS",
        10,
        "Longest wait for the next bytes of a request body; a stalled upload gets 408 and frees its thread.",
        unit="seconds",
        ge=0.1,
        le=600,
    )
    header_timeout: float = setting(
        "FLASK_SVC_HEADER_TIMEOUT_SECONDS",
        5,
        "Longest a new connection may take to send a whole request head; idle or slow clients are then closed "
        "(no request thread waits for them).",
        unit="seconds",
        ge=0.1,
        le=600,
    )
    liveness_stall: float = setting(
        "FLASK_SVC_LIVENESS_STALL_SECONDS",
        60,
        "`/livez` answers 503 once every request thread has been busy this long without finishing a request.",
        unit="seconds",
        ge=1,
        le=3600,
    )
    metrics_enabled: bool = setting(
        "FLASK_SVC_METRICS", True, "Collect and serve Prometheus metrics; `false` only to measure their cost."
    )
    debug_endpoints: bool = setting(
        "FLASK_SVC_DEBUG_ENDPOINTS", False, "Serve the debug endpoints (`/delay`, `/status`, `/fault`, `/burn`, …)."
    )
    reload: bool = setting("FLASK_SVC_RELOAD", False, "gunicorn code reload (dev loop only).")
    delay_max_seconds: float = setting(
        "FLASK_SVC_DELAY_MAX_SECONDS", 30, "Cap for `GET /delay/<seconds>`.", unit="seconds", ge=0, le=600
    )
    burn_max_ms: int = setting(
        "FLASK_SVC_BURN_MAX_MS", 10_000, "Cap for `GET /burn?ms=N`.", unit="milliseconds", ge=0, le=600_000
    )
    version: str = setting("FLASK_SVC_VERSION", __version__, "Reported version (set at build).", accepts="text")
    git_commit: str = setting("FLASK_SVC_GIT_COMMIT", "unknown", "Git commit (set at build).", accepts="text")
    build_date: str = setting("FLASK_SVC_BUILD_DATE", "unknown", "Build date (set at build).", accepts="text")
    pod_name: str = setting("POD_NAME", "", "Pod name (Downward API); hostname when unset.", accepts="text")
    pod_namespace: str = setting("POD_NAMESPACE", "", "Namespace (Downward API).", accepts="text")
    node_name: str = setting("NODE_NAME", "", "Node name (Downward API).", accepts="text")
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
    model_path: AbsolutePath = setting(
        "FLASK_SVC_MODEL_PATH",
        "",
        "The model to serve (a skops file); unset: no model endpoints. The `-ml` image sets its Iris model.",
        accepts="an absolute file path",
    )
    model_name: ModelWord = setting(
        "FLASK_SVC_MODEL_NAME",
        "",
        "The model's name in the URLs (`/v2/models/<name>`); unset: the file name without its extension.",
        accepts="letters, digits, '_', '.', '-' (up to 128)",
    )
    model_version: ModelWord = setting(
        "FLASK_SVC_MODEL_VERSION",
        "",
        "The model's version; unset: the first 12 hex digits of the file's sha256.",
        accepts="letters, digits, '_', '.', '-' (up to 128)",
    )
    model_allow_pickle: bool = setting(
        "FLASK_SVC_MODEL_ALLOW_PICKLE",
        False,
        "Also load pickle/joblib files, which run any code they contain: only for a file you trust.",
    )
    model_trusted_types: TypeNames = setting(
        "FLASK_SVC_MODEL_TRUSTED_TYPES",
        "",
        "Types a skops file may hold beyond those skops trusts (numpy, scikit-learn estimators).",
        accepts="comma-separated dotted type names (module.Type)",
    )
    model_max_instances: int = setting(
        "FLASK_SVC_MODEL_MAX_INSTANCES",
        1024,
        "Most instances one inference request may carry; more get 413.",
        ge=1,
        le=100_000,
    )
    model_max_body_bytes: int = setting(
        "FLASK_SVC_MODEL_MAX_BODY_BYTES",
        0,
        "Largest inference request body; larger ones get 413 before they are read. 0: derived from the model, "
        '16 KiB + FLASK_SVC_MODEL_MAX_INSTANCES * (features * 48 + 16) bytes (README "Model serving").',
        unit="bytes",
        ge=0,
        le=1 << 30,
    )
    # The standard OpenTelemetry variables that decide whether to trace (README "Tracing"; the SDK reads the rest).
    otel_traces_exporter: Exporter = setting(
        "OTEL_TRACES_EXPORTER",
        "",
        "Span exporter: otlp, console or none.",
        accepts="one of otlp, console, none",
        table=False,
    )
    otel_endpoint: str = setting("OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP endpoint.", accepts="text", table=False)
    otel_traces_endpoint: str = setting(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "OTLP traces endpoint.", accepts="text", table=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        """Values are trimmed; an empty one means the default. Choices and booleans are case-insensitive."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            raise PydanticUseDefault()
        annotation = cls.model_fields[info.field_name or ""].annotation
        if annotation is bool:
            if value.lower() not in _BOOLEANS:
                raise ValueError(value)
            return _BOOLEANS[value.lower()]
        if get_origin(annotation) is Literal:
            return value.lower()
        return value

    @property
    def model_enabled(self) -> bool:
        return bool(self.model_path)

    @property
    def model_trusted_type_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.model_trusted_types.split(",") if name.strip())

    @property
    def traces_exporter(self) -> str | None:
        """The span exporter the OpenTelemetry variables ask for; None when tracing is off."""
        if self.otel_traces_exporter:
            return None if self.otel_traces_exporter == "none" else self.otel_traces_exporter
        return "otlp" if self.otel_endpoint or self.otel_traces_endpoint else None


@dataclass(frozen=True)
class Variable:
    """One row of the configuration table."""

    env: str
    field: str
    default: str
    accepts: str
    meaning: str
    in_table: bool


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _accepts(info: FieldInfo) -> str:
    extra: dict[str, Any] = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "accepts" in extra:
        return str(extra["accepts"])
    if info.annotation is bool:
        return "true or false"
    if get_origin(info.annotation) is Literal:
        return "one of " + ", ".join(get_args(info.annotation))
    low = next(m.ge for m in info.metadata if isinstance(m, Ge))
    high = next(m.le for m in info.metadata if isinstance(m, Le))
    unit = extra.get("unit")
    if unit == "port":
        kind = "an integer port"
    elif info.annotation is int:
        kind = f"an integer number of {unit}" if unit else "an integer"
    else:
        kind = f"a number of {unit}" if unit else "a number"
    return f"{kind} from {_number(low)} to {_number(high)}"  # type: ignore[arg-type]


def _variables() -> tuple[Variable, ...]:
    rows = []
    for name, info in Settings.model_fields.items():
        extra: dict[str, Any] = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        default = info.default
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        rows.append(
            Variable(str(info.validation_alias), name, shown, _accepts(info), info.description or "", extra["table"])
        )
    return tuple(rows)


VARIABLES = _variables()
_ACCEPTS = {variable.env: variable.accepts for variable in VARIABLES}
_FIELDS = {variable.env: variable.field for variable in VARIABLES}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every variable once (the process's environment, or ``environ``); a bad one raises ``ConfigError``."""
    source = os.environ if environ is None else environ
    try:
        settings = Settings.model_validate({name: source[name] for name in _ACCEPTS if name in source})
    except ValidationError as error:
        name = str(error.errors()[0]["loc"][0])
        raw = (os.environ if environ is None else environ).get(name, "")
        raise ConfigError(f"{name}={raw!r} is invalid: expected {_ACCEPTS[name]}") from None
    # The private per-user defaults (see service.privatedirs): a fixed /tmp path could be planted by anyone.
    unset = {name: _private_default(name) for name in _PRIVATE_DEFAULTS if not getattr(settings, name)}
    if unset:
        settings = settings.model_copy(update=unset)
    if settings.batch_runner == "kubernetes":
        for needed in ("FLASK_SVC_BATCH_JOB_TEMPLATE", "FLASK_SVC_BATCH_CALLBACK_URL"):
            if not getattr(settings, _FIELDS[needed]):
                raise ConfigError(f"{needed} is empty: FLASK_SVC_BATCH_RUNNER=kubernetes needs it")
    if settings.batch_auth == "kubernetes":
        from service.batch.access import in_cluster

        if not in_cluster(os.environ if environ is None else environ):
            raise ConfigError(
                "FLASK_SVC_BATCH_AUTH='kubernetes' needs a pod's service account (KUBERNETES_SERVICE_HOST and its "
                "token); outside a cluster use token or none"
            )
    if settings.batch_auth == "token":
        from service.batch.access import read_token_file

        try:
            read_token_file(settings.batch_auth_tokens_file)
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise ConfigError(
                f"FLASK_SVC_BATCH_AUTH_TOKENS_FILE={settings.batch_auth_tokens_file!r} is unusable with "
                f"FLASK_SVC_BATCH_AUTH=token: {reason}"
            ) from None
    if settings.batch_runner == "kubernetes" and settings.batch_lease_seconds <= 2 * settings.batch_reconcile_seconds:
        raise ConfigError(
            f"FLASK_SVC_BATCH_LEASE_SECONDS={settings.batch_lease_seconds:g} must exceed twice "
            f"FLASK_SVC_BATCH_RECONCILE_SECONDS ({settings.batch_reconcile_seconds:g}): "
            "the Lease is renewed once per round"
        )
    return settings


_PRIVATE_DEFAULTS = {"multiproc_dir": "metrics", "batch_data_dir": "batch"}


def _private_base() -> str:
    return f"/tmp/flask-svc-{os.geteuid()}"  # noqa: S108 — checked, with what is in it: service.privatedirs


def _private_default(field: str) -> str:
    return f"{_private_base()}/{_PRIVATE_DEFAULTS[field]}"


def prepare_directories(settings: Settings) -> None:
    """Create or check the directories the service writes (``service.privatedirs``); a planted one raises
    ``ConfigError`` naming its variable, before anything in it is read or removed."""
    fields = ["multiproc_dir"] + (["batch_data_dir"] if settings.batch_runner != "off" else [])
    for field in fields:
        env = str(Settings.model_fields[field].validation_alias)
        path = getattr(settings, field)
        try:
            if os.path.commonpath([path, _private_base()]) == _private_base():
                ensure_directory(_private_base())  # in /tmp anyone could have made it first
            ensure_directory(path)
        except NotPrivate as error:
            raise ConfigError(f"{env}: {error}") from None
        except OSError as error:
            raise ConfigError(f"{env}: cannot create {path}: {error.strerror}") from None


def readme_table() -> str:
    """The README's configuration table, from the fields above."""
    lines = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    for v in VARIABLES:
        if v.in_table:
            lines.append(f"| `{v.env}` | `{v.default or '(unset)'}` | {v.accepts} | {v.meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(readme_table() + "\n")
