"""Logging: JSON lines on stdout (or a console format for humans), the same for the app and for gunicorn.

Every line carries the request's ``request_id`` and, when tracing is on, ``trace_id``/``span_id``. The access line
is gunicorn's own (it sees the whole response, including the time to write it); the app leaves the route, request id
and trace ids in the WSGI environ so that line carries them too. With JSON logs that line is built once, straight
from its fields, without a LogRecord (the same line: tests/server/test_access_line.py).
"""

from __future__ import annotations

import contextvars
import logging
import math
import sys
import time
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from gunicorn.glogging import Logger as GunicornBaseLogger
from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonEncoder, JsonFormatter

from service.names import ACCESS_ENVIRON_KEY, PROBE_PATHS

if TYPE_CHECKING:
    from flask import Flask

    from service.config import Settings

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_CONTEXT_FIELDS = ("request_id", "trace_id", "span_id")
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info"}  # the access line's two levels, as lines print them


def rfc3339(created: float) -> str:
    """``created`` (seconds since the epoch) as UTC with milliseconds, e.g. ``2026-12-07T16:41:05.123Z``: what
    ``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`` writes (rounded to the microsecond
    the same way), with the date and time of day formatted once per second — every log line asks for one."""
    global _seconds_formatted
    fraction, whole = math.modf(created)
    micro = round(fraction * 1_000_000)  # half to even, as datetime rounds a float timestamp
    if micro < 0:  # before 1970: modf keeps the sign
        micro, whole = micro + 1_000_000, whole - 1
    if micro >= 1_000_000:
        micro, whole = micro - 1_000_000, whole + 1
    second = int(whole)
    cached = _seconds_formatted
    if cached[0] != second:
        cached = (second, datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds").removesuffix("+00:00"))
        _seconds_formatted = cached
    return f"{cached[1]}.{micro // 1000:03d}Z"


_seconds_formatted: tuple[int, str] = (0, "1970-01-01T00:00:00")  # one tuple, swapped whole: threads share it


class ContextFilter(logging.Filter):
    """Stamp the current request id and trace context on every record that does not carry its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        if getattr(record, "trace_id", None) is None:
            record.trace_id, record.span_id = current_trace_ids()
        return True


def current_trace_ids() -> tuple[str | None, str | None]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# What python-json-logger leaves out of a line: the LogRecord's own attributes (the message goes in by name).
_NOT_EXTRA = frozenset(RESERVED_ATTRS) | {"message"}


class JsonLineFormatter(JsonFormatter):
    """``timestamp``, ``level``, ``logger``, ``message``, then the record's extra fields, as one JSON object.

    A plain record (a text message, no exception or stack) — every access line — is assembled here in one pass over
    the record: the same fields in the same order as python-json-logger's path (which formats the rest: a dict
    message, exc_info, stack_info), without its per-line merging and its encoder built anew for every line."""

    _encoder = JsonEncoder(ensure_ascii=False)  # the library's encoder, built once instead of per line
    # Its C core made once too: encode() makes one per call. No circular check: a line is a flat dict of scalars.
    _encode_c = (
        c_make_encoder(None, _encoder.default, encode_basestring, None, ": ", ", ", False, False, True)
        if c_make_encoder is not None
        else None
    )

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, dict) or record.exc_info or record.exc_text or record.stack_info:
            return str(super().format(record))
        record.message = record.getMessage()
        extras = {
            key: value for key, value in record.__dict__.items() if key not in _NOT_EXTRA and not key.startswith("_")
        }
        return self.plain_line(record.created, record.levelname, record.name, record.message, extras)

    def plain_line(self, created: float, level: str, logger: str, message: str, extras: dict[str, Any]) -> str:
        """The line of a plain record; also what the access log writes without making a record (see
        ``GunicornLogger.access``)."""
        line = {"timestamp": rfc3339(created), "level": level.lower(), "logger": logger, "message": message}
        line.update(extras)
        for name in _CONTEXT_FIELDS:  # absent beats null: keeps lines short outside requests
            if name in line and line[name] is None:
                del line[name]
        return self.encode_line(line)

    def encode_line(self, line: dict[str, Any]) -> str:
        encode = self._encode_c
        if encode is None:
            return str(self._encoder.encode(line))
        return "".join(encode(line, 0))

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_record["timestamp"] = rfc3339(record.created)
        log_record["level"] = record.levelname.lower()
        log_record["logger"] = record.name
        super().add_fields(log_record, record, message_dict)
        for name in _CONTEXT_FIELDS:  # absent beats null: keeps lines short outside requests
            if log_record.get(name) is None:
                log_record.pop(name, None)


class ConsoleFormatter(logging.Formatter):
    """``time level logger message key=value …`` for people reading a terminal."""

    _standard = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = f"{rfc3339(record.created)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = {k: v for k, v in record.__dict__.items() if k not in self._standard and v is not None}
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in extras.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one stdout handler the service installs; its type lets a second setup find and replace it."""


def make_handler(settings: Settings) -> logging.Handler:
    handler = ServiceHandler(sys.stdout)
    handler.setFormatter(
        JsonLineFormatter("%(message)s", json_ensure_ascii=False)
        if settings.log_format == "json"
        else ConsoleFormatter()
    )
    handler.addFilter(ContextFilter())
    return handler


def _skip_unused_record_fields() -> None:
    """Neither format prints where a call was made, nor the thread or process: don't look them up for every record
    (the logging HOWTO's "Optimization" section; a stack walk per access line was a tenth of its cost)."""
    logging._srcfile = None  # no findCaller(): filename, lineno and funcName stay unset
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure(settings: Settings) -> logging.Handler:
    """Route the root logger (the app's loggers) to the service's stdout handler; returns it for gunicorn's.

    Idempotent: a handler already installed for the same format is kept, one for another format is replaced, and
    handlers others installed (a test's log capture) stay.
    """
    _skip_unused_record_fields()
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    wanted = JsonLineFormatter if settings.log_format == "json" else ConsoleFormatter
    for handler in root.handlers:
        if isinstance(handler, ServiceHandler) and type(handler.formatter) is wanted:
            return handler
    handler = make_handler(settings)
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, ServiceHandler)] + [handler]
    return handler


def init_app(app: Flask, settings: Settings) -> None:
    """Logs in the service's format for the app wherever it runs: under gunicorn (whose logger set it up in the
    master already), `flask run`, or a test."""
    configure(settings)
    app.logger.handlers.clear()  # Flask's default stderr handler would print each line twice
    app.logger.propagate = True


def gunicorn_logger(settings: Settings) -> type[GunicornBaseLogger]:
    """gunicorn's ``logger_class``, bound to the settings the configuration read."""

    bound: type[GunicornBaseLogger] = type("GunicornLogger", (GunicornLogger,), {"bound_settings": settings})
    return bound


class GunicornLogger(GunicornBaseLogger):  # type: ignore[misc]
    """gunicorn's error and access logs in the service's format, on the same handler as the app."""

    bound_settings: Settings
    json_handler: ServiceHandler | None = None

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        handler = configure(self.bound_settings)
        for logger in (self.error_log, self.access_log):
            logger.handlers[:] = [handler]
            logger.propagate = False
        self.access_log.setLevel(self.bound_settings.log_level.upper())  # probe lines are debug: hidden by default
        # The access lines skip the record and write through the handler when it writes JSON lines.
        json_lines = isinstance(handler, ServiceHandler) and isinstance(handler.formatter, JsonLineFormatter)
        self.json_handler = handler if json_lines else None  # type: ignore[assignment]

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        path = environ.get("PATH_INFO", "")
        # Probes arrive every few seconds from every kubelet: keep them out of the default log level.
        level = logging.DEBUG if path in PROBE_PATHS else logging.INFO
        if not self.access_log.isEnabledFor(level):
            return  # the line would be dropped: skip building it
        method = environ.get("REQUEST_METHOD")
        status = resp.status_code if hasattr(resp, "status_code") else int(str(resp.status).split()[0])
        request_fields = (
            ("method", method),
            ("path", path),
            ("query", environ.get("QUERY_STRING") or None),
            ("status", status),
            ("duration_ms", round(request_time.total_seconds() * 1000, 3)),
            ("bytes", getattr(resp, "sent", None)),
            ("remote_addr", environ.get("REMOTE_ADDR")),
            ("user_agent", environ.get("HTTP_USER_AGENT")),
        )
        handler = self.json_handler
        if handler is None or self.access_log.handlers != [handler]:  # console lines, or someone else's handler
            fields = dict(environ.get(ACCESS_ENVIRON_KEY) or {})
            fields.update(request_fields)
            fields = {key: value for key, value in fields.items() if value is not None}
            self.access_log.log(level, "%s %s %s", method, path, status, extra=fields)
            return
        # The JSON line built once, straight into the dict that is encoded: no LogRecord copied into a dict and
        # scanned again. Field order and what is left out are the record path's: the app's fields, the request's,
        # then what ContextFilter would stamp on a record; None values left out.
        message = "%s %s %s" % (method, path, status)  # noqa: UP031 — the record's message
        line: dict[str, Any] = {
            "timestamp": rfc3339(time.time()),
            "level": _LEVEL_NAMES[level],
            "logger": self.access_log.name,
            "message": message,
        }
        app_fields = environ.get(ACCESS_ENVIRON_KEY)
        if app_fields:
            for key, value in app_fields.items():
                if value is not None:
                    line[key] = value
        for key, value in request_fields:
            if value is not None:
                line[key] = value
        # The app's fields, when it saw the request, are its ids (once it has answered, no request id or span is
        # current any more); the context is asked only for a request the app never saw.
        if not app_fields:
            if "request_id" not in line and (request_id := REQUEST_ID.get()) is not None:
                line["request_id"] = request_id
            if "trace_id" not in line:
                trace_id, span_id = current_trace_ids()
                if trace_id is not None:
                    line["trace_id"] = trace_id
                if span_id is not None:
                    line["span_id"] = span_id
                else:
                    line.pop("span_id", None)
        formatter: JsonLineFormatter = handler.formatter  # type: ignore[assignment]
        text = formatter.encode_line(line)
        handler.acquire()
        try:
            handler.stream.write(text + handler.terminator)
            handler.stream.flush()  # handler.flush() would take the lock held here a second time
        except Exception:  # a closed or broken stdout: logging's own handling, as for any other line
            handler.handleError(logging.makeLogRecord({"msg": message}))
        finally:
            handler.release()
