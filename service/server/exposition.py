"""What the metrics port answers: prometheus_client's answer, without its web-server module.

prometheus_client keeps its Prometheus text format in ``prometheus_client.exposition``, beside its HTTP servers and
push-gateway client, whose imports (http.server, wsgiref, urllib.request, ssl) were about 10 MB of the metrics
process's 23 (the port is now served by the gunicorn master). This module answers as the ``start_http_server`` it
replaced did, and tests/server/test_exposition.py compares the two for every case: the format chosen from ``Accept``
(OpenMetrics written by prometheus_client's own ``openmetrics.exposition``, which imports none of that; the
Prometheus text format written here), the body gzipped when ``Accept-Encoding`` allows it, ``name[]`` restricting the
samples, every path but ``/favicon.ico`` serving the metrics, OPTIONS answered, other methods 405.

It imports only light prometheus_client modules.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, unquote

from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.utils import floatToGoString, parse_version

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Sample

TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"  # what a scraper that asks for nothing in particular gets
TEXT_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"
_OPENMETRICS = "application/openmetrics-text"
_ESCAPINGS = (openmetrics.ALLOWUTF8, openmetrics.UNDERSCORES, openmetrics.DOTS, openmetrics.VALUES)
_ALLOW = [("Allow", "OPTIONS,GET")]

# OpenMetrics types as the Prometheus text format names them, and the name suffix it adds to the family.
_TEXT_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
_TEXT_SUFFIXES = {"counter": "_total", "info": "_info"}
# Samples the text format cannot hold in their family: each suffix gets a gauge family of its own, after it.
_APART = ("_created", "_gsum", "_gcount")

Answer = tuple[str, list[tuple[str, str]], bytes]  # status line, headers, body


class Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


class Restrictable(Collector, Protocol):
    def restricted_registry(self, names: Iterable[str]) -> Collector: ...


Encoder = Callable[[Collector], bytes]


def answer(registry: Restrictable, method: str, target: str, headers: Mapping[str, str]) -> Answer:
    """The answer to one request; ``headers`` by lower-case name."""
    if method == "OPTIONS":
        return "200 OK", list(_ALLOW), b""
    if method != "GET":
        status = "405 Method Not Allowed"
        return status, list(_ALLOW), f"# HTTP {status}: {method}; use OPTIONS or GET\n".encode()
    path, _, query = target.partition("?")
    if unquote(path, "iso-8859-1") == "/favicon.ico":  # browsers ask for it
        return "200 OK", [], b""
    encoder, content_type = choose_encoder(headers.get("accept", ""))
    names = parse_qs(query).get("name[]")
    body = encoder(registry.restricted_registry(names) if names else registry)
    if gzip_accepted(headers.get("accept-encoding", "")):
        return "200 OK", [("Content-Type", content_type), ("Content-Encoding", "gzip")], gzip.compress(body)
    return "200 OK", [("Content-Type", content_type)], body


def choose_encoder(accept: str) -> tuple[Encoder, str]:
    """The first offer of ``Accept`` this server can write: OpenMetrics, or the text format at version ≥ 1.0.0 with
    its escaping; otherwise the text format 0.0.4."""
    for offer in accept.split(","):
        parameters = offer.split(";")
        media = parameters[0].strip()
        if media not in (_OPENMETRICS, "text/plain"):
            continue
        version, escaping = _parameter(parameters, "version"), _escaping(parameters)
        if media == _OPENMETRICS and not version:
            return partial(openmetrics.generate_latest, version="1.0.0"), openmetrics.CONTENT_TYPE_LATEST
        # The version is written back into Content-Type: only digits and dots. Any other is an offer this server
        # cannot write, passed over as prometheus_client passes over a version below 1.0.0.
        if version and _numeric(version) and parse_version(version) >= (1, 0, 0):
            if media == _OPENMETRICS:
                content_type = f"{_OPENMETRICS}; version={version}; charset=utf-8; escaping={escaping}"
                return partial(openmetrics.generate_latest, escaping=escaping, version=version), content_type
            return partial(text_format, escaping=escaping), f"{TEXT_1_0_0}; escaping={escaping}"
    return text_format, TEXT_0_0_4


def _parameter(parameters: list[str], key: str) -> str | None:
    """The first ``key=value`` among a media type's parameters (spaces around the pair ignored, not inside it)."""
    for parameter in parameters:
        name, equals, value = parameter.strip().partition("=")
        if equals and name == key:
            return value
    return None


def _numeric(version: str) -> bool:
    """Dot-separated decimal numbers: ``[0-9]+(\\.[0-9]+)*``."""
    return all(part.isascii() and part.isdigit() for part in version.split("."))


def _escaping(parameters: list[str]) -> str:
    escaping = _parameter(parameters, openmetrics.ESCAPING_HEADER_TAG)
    return escaping if escaping in _ESCAPINGS else openmetrics.UNDERSCORES


def gzip_accepted(accept_encoding: str) -> bool:
    return any(coding.split(";")[0].strip().lower() == "gzip" for coding in accept_encoding.split(","))


def text_format(registry: Collector, escaping: str = openmetrics.UNDERSCORES) -> bytes:
    """The Prometheus text format of everything ``registry`` collects."""
    lines: list[str] = []
    for family in registry.collect():
        help_text = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        name = family.name + _TEXT_SUFFIXES.get(family.type, "")
        _family_head(lines, name, help_text, _TEXT_TYPES.get(family.type, family.type), escaping)
        apart: dict[str, list[str]] = {}
        for sample in family.samples:
            suffix = next((each for each in _APART if sample.name == family.name + each), None)
            line = _sample_line(sample, escaping)
            if suffix is None:
                lines.append(line)
            else:
                apart.setdefault(suffix, []).append(line)
        for suffix in sorted(apart):
            _family_head(lines, family.name + suffix, help_text, "gauge", escaping)
            lines.extend(apart[suffix])
    return "".join(lines).encode()


def _family_head(lines: list[str], name: str, help_text: str, kind: str, escaping: str) -> None:
    escaped = openmetrics.escape_metric_name(name, escaping)
    lines.append(f"# HELP {escaped} {help_text}\n# TYPE {escaped} {kind}\n")


def _sample_line(sample: Sample, escaping: str) -> str:
    labels = ",".join(
        f'{openmetrics.escape_label_name(name, escaping)}="{_label_value(value)}"'
        for name, value in sorted(sample.labels.items())
    )
    name = openmetrics.escape_metric_name(sample.name, escaping)
    timestamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"  # milliseconds
    value = f" {floatToGoString(sample.value)}{timestamp}\n"  # type: ignore[no-untyped-call]
    if name.startswith('"'):  # a name outside the legacy character set, under allow-utf-8: inside the braces
        return f"{{{name}{',' if labels else ''}{labels}}}{value}"
    return f"{name}{{{labels}}}{value}" if labels else name + value


def _label_value(value: str) -> str:
    """Label values may hold any UTF-8: only the backslash, the newline and the double quote are escaped."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
