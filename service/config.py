"""Every setting the service reads, in one table, parsed once into one typed object.

Each variable is declared once in ``VARIABLES`` with its default, its parser and what it accepts; ``load_settings``
turns the environment into a frozen ``Settings``. A bad value raises ``ConfigError`` whose message is one line naming
the variable and what it accepts, so the process can stop before it binds a port.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from service import __version__

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "console")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A variable holds a value the service cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    metrics_port: int
    workers: int
    threads: int
    timeout: int
    graceful_timeout: int
    keepalive: int
    log_level: str
    log_format: str
    multiproc_dir: str
    max_upload_bytes: int
    max_vocabulary: int
    read_timeout: float
    header_timeout: float
    liveness_stall: float
    metrics_enabled: bool
    debug_endpoints: bool
    reload: bool
    delay_max_seconds: float
    burn_max_ms: int
    version: str
    git_commit: str
    build_date: str
    pod_name: str
    pod_namespace: str
    node_name: str
    model_path: str
    model_name: str
    model_version: str
    model_allow_pickle: bool
    model_trusted_types: tuple[str, ...]
    model_max_instances: int

    @property
    def model_enabled(self) -> bool:
        return bool(self.model_path)


@dataclass(frozen=True)
class Variable:
    env: str
    field: str
    default: str
    accepts: str
    parse: Callable[[str], Any]
    meaning: str


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())  # ValueError → reported with `accepts`
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return parse


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(raw)
        return value

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(raw)
        return value

    return parse


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(raw)


def _text(raw: str) -> str:
    return raw.strip()


_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


def _host(raw: str) -> str:
    value = raw.strip()
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise
    return value


def _absolute_path(raw: str) -> str:
    value = raw.strip()
    if not value.startswith("/") or "\x00" in value:
        raise ValueError(raw)
    return value


def _optional_path(raw: str) -> str:
    return _absolute_path(raw) if raw.strip() else ""


_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _type_names(raw: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    if not all(_DOTTED_NAME.fullmatch(name) for name in names):
        raise ValueError(raw)
    return names


def _model_word(raw: str) -> str:
    value = raw.strip()
    if value and not _MODEL_NAME.fullmatch(value):
        raise ValueError(raw)
    return value


def _nonempty(raw: str) -> str:
    if not raw.strip():
        raise ValueError(raw)
    return raw.strip()


_PORT = _integer(1, 65535)
_PORT_ACCEPTS = "an integer port from 1 to 65535"

VARIABLES: tuple[Variable, ...] = (
    Variable(
        "HOST", "host", "0.0.0.0", "an IP address or host name", _host, "Bind address (`make run` uses 127.0.0.1)."
    ),
    Variable("PORT", "port", "8080", _PORT_ACCEPTS, _PORT, "Application port."),
    Variable("METRICS_PORT", "metrics_port", "9797", _PORT_ACCEPTS, _PORT, "Prometheus `/metrics` port (master)."),
    Variable(
        "WEB_CONCURRENCY", "workers", "1", "an integer from 1 to 64", _integer(1, 64), "gunicorn worker processes."
    ),
    Variable("GUNICORN_THREADS", "threads", "4", "an integer from 1 to 256", _integer(1, 256), "Threads per worker."),
    Variable(
        "GUNICORN_TIMEOUT",
        "timeout",
        "30",
        "an integer number of seconds from 1 to 3600",
        _integer(1, 3600),
        "A worker silent for this long is killed and replaced.",
    ),
    Variable(
        "GUNICORN_GRACEFUL_TIMEOUT",
        "graceful_timeout",
        "20",
        "an integer number of seconds from 1 to 3600",
        _integer(1, 3600),
        "Time in-flight requests get to finish after SIGTERM.",
    ),
    Variable(
        "GUNICORN_KEEPALIVE",
        "keepalive",
        "5",
        "an integer number of seconds from 0 to 600",
        _integer(0, 600),
        "Idle keep-alive connection timeout.",
    ),
    Variable("LOG_LEVEL", "log_level", "info", "one of " + ", ".join(LOG_LEVELS), _choice(LOG_LEVELS), "Log level."),
    Variable(
        "LOG_FORMAT",
        "log_format",
        "json",
        "one of " + ", ".join(LOG_FORMATS),
        _choice(LOG_FORMATS),
        "`json` lines for machines, `console` for humans.",
    ),
    Variable(
        "PROMETHEUS_MULTIPROC_DIR",
        "multiproc_dir",
        "/tmp/flask-svc-metrics",  # noqa: S108 — the chart mounts an emptyDir here; wiped at start
        "an absolute directory path",
        _absolute_path,
        "Where workers write metric files; wiped at start.",
    ),
    Variable(
        "FLASK_SVC_MAX_UPLOAD_BYTES",
        "max_upload_bytes",
        str(10 * 1024 * 1024),
        "an integer number of bytes from 1 to 1073741824",
        _integer(1, 1 << 30),
        "Largest request body; larger ones get 413.",
    ),
    Variable(
        "FLASK_SVC_MAX_VOCABULARY",
        "max_vocabulary",
        "100000",
        "an integer from 1 to 10000000",
        _integer(1, 10_000_000),
        "Most distinct words one request may hold; more get 413 (bounds memory: ~200 B per word).",
    ),
    Variable(
        "FLASK_SVC_READ_TIMEOUT_SECONDS",
        "read_timeout",
        "10",
        "a number of seconds from 0.1 to 600",
        _number(0.1, 600),
        "Longest wait for the next bytes of a request body; a stalled upload gets 408 and frees its thread.",
    ),
    Variable(
        "FLASK_SVC_HEADER_TIMEOUT_SECONDS",
        "header_timeout",
        "5",
        "a number of seconds from 0.1 to 600",
        _number(0.1, 600),
        "Longest a new connection may take to send a whole request head; idle or slow clients are then closed "
        "(no request thread waits for them).",
    ),
    Variable(
        "FLASK_SVC_LIVENESS_STALL_SECONDS",
        "liveness_stall",
        "60",
        "a number of seconds from 1 to 3600",
        _number(1, 3600),
        "`/livez` answers 503 once every request thread has been busy this long without finishing a request.",
    ),
    Variable(
        "FLASK_SVC_METRICS",
        "metrics_enabled",
        "true",
        "true or false",
        _boolean,
        "Collect and serve Prometheus metrics; `false` only to measure their cost.",
    ),
    Variable(
        "FLASK_SVC_DEBUG_ENDPOINTS",
        "debug_endpoints",
        "false",
        "true or false",
        _boolean,
        "Serve the debug endpoints (`/delay`, `/status`, `/fault`, `/burn`, …).",
    ),
    Variable("FLASK_SVC_RELOAD", "reload", "false", "true or false", _boolean, "gunicorn code reload (dev loop only)."),
    Variable(
        "FLASK_SVC_DELAY_MAX_SECONDS",
        "delay_max_seconds",
        "30",
        "a number of seconds from 0 to 600",
        _number(0, 600),
        "Cap for `GET /delay/<seconds>`.",
    ),
    Variable(
        "FLASK_SVC_BURN_MAX_MS",
        "burn_max_ms",
        "10000",
        "an integer number of milliseconds from 0 to 600000",
        _integer(0, 600_000),
        "Cap for `GET /burn?ms=N`.",
    ),
    Variable("FLASK_SVC_VERSION", "version", __version__, "text", _nonempty, "Reported version (set at build)."),
    Variable("FLASK_SVC_GIT_COMMIT", "git_commit", "unknown", "text", _nonempty, "Git commit (set at build)."),
    Variable("FLASK_SVC_BUILD_DATE", "build_date", "unknown", "text", _nonempty, "Build date (set at build)."),
    Variable("POD_NAME", "pod_name", "", "text", _text, "Pod name (Downward API); hostname when unset."),
    Variable("POD_NAMESPACE", "pod_namespace", "", "text", _text, "Namespace (Downward API)."),
    Variable("NODE_NAME", "node_name", "", "text", _text, "Node name (Downward API)."),
    Variable(
        "FLASK_SVC_MODEL_PATH",
        "model_path",
        "",
        "an absolute file path, or empty",
        _optional_path,
        "The model to serve (a skops file); empty: no model endpoints. The `-ml` image sets its Iris model.",
    ),
    Variable(
        "FLASK_SVC_MODEL_NAME",
        "model_name",
        "",
        "letters, digits, '_', '.', '-' (up to 128), or empty",
        _model_word,
        "The model's name in the URLs (`/v2/models/<name>`); empty: the file name without its extension.",
    ),
    Variable(
        "FLASK_SVC_MODEL_VERSION",
        "model_version",
        "",
        "letters, digits, '_', '.', '-' (up to 128), or empty",
        _model_word,
        "The model's version; empty: the first 12 hex digits of the file's sha256.",
    ),
    Variable(
        "FLASK_SVC_MODEL_ALLOW_PICKLE",
        "model_allow_pickle",
        "false",
        "true or false",
        _boolean,
        "Also load pickle/joblib files, which run any code they contain: only for a file you trust.",
    ),
    Variable(
        "FLASK_SVC_MODEL_TRUSTED_TYPES",
        "model_trusted_types",
        "",
        "comma-separated dotted type names (module.Type)",
        _type_names,
        "Types a skops file may hold beyond those skops trusts (numpy, scikit-learn estimators).",
    ),
    Variable(
        "FLASK_SVC_MODEL_MAX_INSTANCES",
        "model_max_instances",
        "1024",
        "an integer from 1 to 100000",
        _integer(1, 100_000),
        "Most instances one inference request may carry; more get 413.",
    ),
)

TRACES_EXPORTERS = ("otlp", "console")


def traces_exporter(env: Mapping[str, str]) -> str | None:
    """The span exporter the standard OpenTelemetry variables ask for; None when tracing is off."""
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if chosen == "none":
        return None
    if chosen:
        return chosen.split(",")[0].strip()
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return "otlp"
    return None


# A field without a variable, or a variable without a field, is a bug caught at import.
assert {v.field for v in VARIABLES} == {f.name for f in fields(Settings)}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every variable once; the first bad one raises ``ConfigError`` naming it."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var in VARIABLES:
        raw = env.get(var.env)
        if raw is None or (raw.strip() == "" and var.parse is not _text):
            raw = var.default
        try:
            values[var.field] = var.parse(raw)
        except ValueError:
            raise ConfigError(f"{var.env}={raw!r} is invalid: expected {var.accepts}") from None
    exporter = traces_exporter(env)
    if exporter is not None and exporter not in TRACES_EXPORTERS:
        raw = env.get("OTEL_TRACES_EXPORTER", "")
        raise ConfigError(f"OTEL_TRACES_EXPORTER={raw!r} is invalid: expected one of otlp, console, none")
    return Settings(**values)
