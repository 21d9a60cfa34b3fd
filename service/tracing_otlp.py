"""OTLP/HTTP span export with an encoder of the service's own (issue 24): imported only when tracing exports OTLP.

The upstream exporter turns each finished span into a tree of protobuf message objects (a ``KeyValue`` and an
``AnyValue`` per attribute) and serialises the tree: about 200k instructions a span on the batch processor's thread,
as much again as the request's own span work. This writes the same ``ExportTraceServiceRequest`` bytes directly —
fields in field-number order, defaults left out as proto3 leaves them, the same grouping by resource and then scope
— and reuses what repeats from span to span (an attribute's key and value, a span name, the resource and scope).
tests/unit/test_tracing_otlp.py compares the bytes with upstream's on real spans; the HTTP side (endpoint, headers,
compression, TLS, retries, the size limit) stays upstream's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from struct import Struct
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode

log = logging.getLogger(__name__)

_FIXED64 = Struct("<Q").pack
_DOUBLE = Struct("<d").pack
_FIXED32 = Struct("<I").pack
_TIMES = Struct("<BQBQ").pack  # a span's start and end fields (tag, fixed64) in one call
_INT64_MIN, _INT64_END = -(2**63), 2**63
# Span.flags / Link.flags: "has is_remote" always, "is remote" when the parent (or linked) context came from afar.
_LOCAL_FLAGS, _REMOTE_FLAGS = _FIXED32(0x100), _FIXED32(0x300)
_KINDS = {kind: b"\x30" + bytes((kind.value + 1,)) for kind in SpanKind}  # the SDK counts from INTERNAL = 0, OTLP 1
# Attribute values and span names seen again and again (method, route, status, host, stage names) are encoded once.
# Only short texts are kept (those are at most 45 characters): a request's own strings (user agent, query, path) may
# be kilobytes and differ every time. The count is bounded too, as a value like the client's port takes many values.
# Together: under 1 MiB kept per exporter whatever clients send (0.55 MB with both caches full of 64-character
# non-ASCII texts; tests/unit/test_tracing_otlp.py measures).
_CACHED_TEXT_LIMIT = 64
_CACHE_LIMIT = 512
# The opentelemetry-exporter-otlp-proto-http release whose export() OtlpHttpExporter.export follows (a test checks).
UPSTREAM_EXPORTER_VERSION = "1.45.1"


def _varint(number: int) -> bytes:
    if number < 0x80:
        return bytes((number,))
    out = bytearray()
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag`` (field number and wire type 2, as bytes), length, payload."""
    return tag + _varint(len(payload)) + payload


def _string(tag: bytes, text: str | None) -> bytes:
    """A proto3 string field: left out when empty."""
    return _field(tag, text.encode()) if text else b""


def _any_value(value: Any) -> bytes:
    """An ``AnyValue`` message's payload, the value's type chosen in upstream's order (a bool is also an int, a str
    also a sequence). The oneof carries presence: an empty string, a zero, ``False`` are all written."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        if not _INT64_MIN <= value < _INT64_END:
            raise ValueError(f"{value} is out of the int64 range")
        return b"\x18" + _varint(value % 2**64)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        pairs = b"".join(_field(b"\x0a", _key_value(str(key), item)) for key, item in value.items())
        return _field(b"\x32", pairs)
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    return _string(b"\x0a", key) + _field(b"\x12", _any_value(value))


class SpanEncoder:
    """``ExportTraceServiceRequest`` bytes for a batch of finished spans, equal to upstream's
    ``encode_spans(spans).SerializePartialToString()``. One per exporter: its caches are used from the processor's
    thread only."""

    def __init__(self) -> None:
        self._attributes: dict[tuple[str, Any], bytes] = {}
        self._names: dict[str, bytes] = {}
        self._resources: dict[Resource, bytes] = {}
        self._scopes: dict[InstrumentationScope | None, bytes] = {}
        self._statuses: dict[StatusCode, bytes] = {}  # without a description: it may carry an error's message

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        grouped: dict[Resource, dict[InstrumentationScope | None, list[bytes]]] = {}
        for span in spans:
            by_scope = grouped.get(span.resource)
            if by_scope is None:
                by_scope = grouped[span.resource] = {}
            scope = span.instrumentation_scope or None
            encoded = self._span(span)
            same_scope = by_scope.get(scope)
            if same_scope is None:
                by_scope[scope] = [encoded]
            else:
                same_scope.append(encoded)
        out = []
        for resource, by_scope in grouped.items():
            scope_spans = [self._resource(resource)]
            for scope, spans_of_scope in by_scope.items():
                schema_url = _string(b"\x1a", scope.schema_url if scope else None)
                scope_spans.append(_field(b"\x12", self._scope(scope) + b"".join(spans_of_scope) + schema_url))
            resource_spans = b"".join(scope_spans) + _string(b"\x1a", resource.schema_url)
            out.append(_field(b"\x0a", resource_spans))
        return b"".join(out)

    def _resource(self, resource: Resource) -> bytes:
        encoded = self._resources.get(resource)
        if encoded is None:
            encoded = self._resources[resource] = _field(b"\x0a", self._attribute_list(b"\x0a", resource.attributes))
        return encoded

    def _scope(self, scope: InstrumentationScope | None) -> bytes:
        encoded = self._scopes.get(scope)
        if encoded is None:
            payload = b""
            if scope is not None:
                payload = _string(b"\x0a", scope.name) + _string(b"\x12", scope.version)
                payload += self._attribute_list(b"\x1a", scope.attributes)
            encoded = self._scopes[scope] = _field(b"\x0a", payload)
        return encoded

    def _attribute_list(self, tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
        """Each attribute as a ``KeyValue`` field; one that cannot be encoded is left out, logged, as upstream does."""
        if not attributes:
            return b""
        if type(attributes) is BoundedAttributes:
            attributes = attributes._dict  # its plain dict: iterating the mapping goes through a lock and the ABCs
        cache = self._attributes
        out = []
        for key, value in attributes.items():
            # Short strings and ints only (never floats: 0.0 == -0.0 and their bytes differ); ``type`` is bool apart
            # from int, so ``True`` never finds the entry of ``1``.
            cached = (type(value) is str and len(value) <= _CACHED_TEXT_LIMIT) or type(value) is int
            encoded = cache.get((key, value)) if cached else None
            if encoded is None:
                try:
                    encoded = _field(tag, _key_value(key, value))
                except Exception as error:
                    log.exception("Failed to encode key %s: %s", key, error)
                    continue
                if cached:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    cache[key, value] = encoded
            out.append(encoded)
        return b"".join(out)

    def _span(self, span: ReadableSpan) -> bytes:
        # The SDK's span fields are read directly where its properties would copy (attributes, events, links).
        context: SpanContext = span.context
        parent = span.parent
        name = self._names.get(span.name)
        if name is None:
            name = _string(b"\x2a", span.name)
            if len(span.name) <= _CACHED_TEXT_LIMIT:
                if len(self._names) >= _CACHE_LIMIT:
                    self._names.clear()
                self._names[span.name] = name
        parts = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"), b"\x12\x08", context.span_id.to_bytes(8, "big")]
        if context.trace_state:
            parts.append(_string(b"\x1a", ",".join(f"{key}={value}" for key, value in context.trace_state.items())))
        if parent:
            parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
        parts += (name, _KINDS[span.kind])
        start, end = span.start_time, span.end_time
        if start and end:
            parts.append(_TIMES(0x39, start, 0x41, end))
        else:
            parts += (b"\x39" + _FIXED64(start) if start else b"", b"\x41" + _FIXED64(end) if end else b"")
        attributes = span._attributes
        parts.append(self._attribute_list(b"\x4a", attributes))
        if type(attributes) is BoundedAttributes and attributes.dropped:
            parts += (b"\x50", _varint(attributes.dropped))
        if span._events:
            parts += [_field(b"\x5a", self._event(event)) for event in span.events]
            if span.dropped_events:
                parts += (b"\x60", _varint(span.dropped_events))
        if span._links:
            parts += [_field(b"\x6a", self._link(link)) for link in span.links]
            if span.dropped_links:
                parts += (b"\x70", _varint(span.dropped_links))
        status = span.status
        code, description = status.status_code, status.description
        encoded_status = None if description else self._statuses.get(code)
        if encoded_status is None:
            payload = _string(b"\x12", description) + (b"\x18" + _varint(code.value) if code.value else b"")
            encoded_status = _field(b"\x7a", payload)
            if not description:
                self._statuses[code] = encoded_status
        parts += (encoded_status, b"\x85\x01", _REMOTE_FLAGS if parent and parent.is_remote else _LOCAL_FLAGS)
        return _field(b"\x12", b"".join(parts))

    def _event(self, event: Event) -> bytes:
        payload = b"\x09" + _FIXED64(event.timestamp) if event.timestamp else b""
        payload += _string(b"\x12", event.name) + self._attribute_list(b"\x1a", event.attributes)
        if event.dropped_attributes:
            payload += b"\x20" + _varint(event.dropped_attributes)
        return payload

    def _link(self, link: Link) -> bytes:
        """Upstream writes a link's ids, attributes and flags, not its trace state."""
        context = link.context
        payload = b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big")
        payload += self._attribute_list(b"\x22", link.attributes)
        if dropped := link.dropped_attributes:
            payload += b"\x28" + _varint(dropped)
        return payload + b"\x35" + (_REMOTE_FLAGS if context.is_remote else _LOCAL_FLAGS)


class OtlpHttpExporter(OTLPSpanExporter):
    """Upstream's OTLP/HTTP exporter (its configuration from ``OTEL_*``, its HTTP client with retries, its metrics
    and request-size limit) with ``SpanEncoder`` in place of its message-object encoding."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.encoder = SpanEncoder()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # Upstream's own steps around the encoding, through the private attributes its export() uses in the release
        # UPSTREAM_EXPORTER_VERSION.
        if self._shutdown:
            log.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as outcome:
            try:
                body = self.encoder.encode(spans)
            except Exception as error:
                log.error("Failed to encode span batch: %s", error)
                outcome.error = error
                return SpanExportResult.FAILURE
            if _is_request_too_large(body, self._max_request_size):
                log.warning("Dropping a span batch of %d bytes (limit %d)", len(body), self._max_request_size)
                outcome.error = RequestPayloadTooLargeError(f"{len(body)} bytes exceed {self._max_request_size}")
                return SpanExportResult.FAILURE
            sent = self._client.export(body)
            if not sent.success:
                outcome.error = sent.error
                if sent.status_code is not None:
                    outcome.error_attrs = {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
