"""Every setting the service reads, declared once on one typed, frozen object: ``Settings``.

``Settings`` composes the sections: the service's own (``ServiceSettings``, ``TracingSettings``, here) and each
feature's (``service.batch.settings``, ``service.inference.settings``). Each field names its variable
(``validation_alias``), its default, its bounds and what it means. ``load_settings`` turns a bad value into
``ConfigError``, one line naming the variable and what it accepts (derived from the field's type and bounds), so the
process can stop before it binds a port. The manual's configuration table is generated from the same fields, outside
the running service (docs/hooks/settings_table.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Le
from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo

from service import __version__
from service.batch.settings import BatchSettings
from service.config_fields import (
    AbsolutePath,
    ConfigError,
    Exporter,
    Host,
    Section,
    address,
    setting,
)
from service.inference.settings import ModelSettings
from service.privatedirs import NotPrivate, ensure_directory

__all__ = ["VARIABLE_ACCEPTS", "ConfigError", "Settings", "address", "load_settings", "prepare_directories"]

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["json", "console"]
_STAGE_OTEL_WITHHELD = re.compile(r"^OTEL_RESOURCE_ATTRIBUTES$|HEADERS")


class ServiceSettings(Section):
    """The service's own: the server, logging, limits every request shares, the debug endpoints, the build."""

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


class TracingSettings(Section):
    # The standard OpenTelemetry variables that decide whether to trace (docs/observability.md "Tracing"; the SDK
    # reads the rest).
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

    # Not a variable of its own: the OpenTelemetry variables the batch stages are started with, so they export their
    # spans where the service does (load_settings collects them). The resource attributes name this pod, not theirs;
    # headers (a collector's credentials) stay out: the kubernetes runner writes this environment into the Job.
    otel_stage_environment: dict[str, str] = Field(default_factory=dict)

    @property
    def traces_exporter(self) -> str | None:
        """The span exporter the OpenTelemetry variables ask for; None when tracing is off."""
        if self.otel_traces_exporter:
            return None if self.otel_traces_exporter == "none" else self.otel_traces_exporter
        return "otlp" if self.otel_endpoint or self.otel_traces_endpoint else None


class Settings(TracingSettings, ModelSettings, BatchSettings, ServiceSettings):
    """Every section in one frozen object. pydantic collects the fields from the last base up: the variables are
    listed (in the table, in errors) as the service's own, then batch, model serving, tracing."""


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


# What each variable accepts, by its name, in the order Settings declares them: the names load_settings reads and
# the words of a bad value's error. The manual's table adds defaults and meanings (docs/hooks/settings_table.py).
VARIABLE_ACCEPTS = {
    str(info.validation_alias): _accepts(info)
    for info in Settings.model_fields.values()
    if info.validation_alias is not None
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every variable once (the process's environment, or ``environ``); a bad one raises ``ConfigError``."""
    source = os.environ if environ is None else environ
    # From the process's environment whatever ``environ`` says: it is where the OpenTelemetry SDK reads them too.
    stage_otel = {k: v for k, v in os.environ.items() if k.startswith("OTEL_") and not _STAGE_OTEL_WITHHELD.search(k)}
    try:
        settings = Settings.model_validate(
            {
                **{name: source[name] for name in VARIABLE_ACCEPTS if name in source},
                "otel_stage_environment": stage_otel,
            }
        )
    except ValidationError as error:
        name = str(error.errors()[0]["loc"][0])
        raw = (os.environ if environ is None else environ).get(name, "")
        raise ConfigError(f"{name}={raw!r} is invalid: expected {VARIABLE_ACCEPTS[name]}") from None
    # The private per-user defaults (see service.privatedirs): a fixed /tmp path could be planted by anyone.
    unset = {name: _private_default(name) for name in _PRIVATE_DEFAULTS if not getattr(settings, name)}
    if unset:
        settings = settings.model_copy(update=unset)
    settings.check_batch(source)
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
