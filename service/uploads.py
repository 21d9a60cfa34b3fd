"""The uploaded text as UTF-8 byte chunks, whatever form it came in, read as it arrives.

- ``text/plain``: the body, straight from the socket.
- ``multipart/form-data``: the ``file`` part, parsed on the fly by Werkzeug's sans-I/O decoder — nothing is spooled
  to disk and the part's bytes are never decoded behind our back.
- ``application/json``: ``{"text": ...}``, parsed whole; bounded by the upload limit.

Every way a body can be wrong becomes a 4xx problem: too large (413), stalled (408), cut short or malformed (400),
in another charset (415).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import pydantic
from flask import Request, request
from gunicorn.http.errors import NoMoreData, ParseException
from pydantic import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from service.names import CHUNK_BYTES
from service.problems import Problem


class TextBody(pydantic.BaseModel):
    """The ``application/json`` form of a text upload."""

    text: str = pydantic.Field(description="The text to analyse.")


MEDIA_TYPES = ("text/plain", "application/json", "multipart/form-data")
FILE_PART = "file"
_UTF8_CHARSETS = ("utf-8", "utf8", "us-ascii", "ascii")


def text_chunks(max_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The text of this request's body; raises ``Problem`` for a body that cannot be read as text. ``chunk_bytes``:
    the size of each read from the socket (a caller that only copies the bytes elsewhere reads more at once)."""
    current: Request = request._get_current_object()  # type: ignore[attr-defined]  # once, not per attribute
    if current.content_length is not None and current.content_length > max_bytes:
        raise _too_large(max_bytes)
    mimetype = current.mimetype
    if mimetype == "text/plain":
        _check_charset(current.mimetype_params.get("charset"))
        return _read(max_bytes, chunk_bytes)
    if mimetype == "multipart/form-data":
        return _multipart_file(current.mimetype_params.get("boundary"), max_bytes, chunk_bytes)
    if mimetype == "application/json":
        return _json_text(max_bytes)
    raise Problem(
        415,
        "unsupported_media_type",
        f"send the text as {', '.join(MEDIA_TYPES)}; got {mimetype or 'no content type'}",
    )


def _too_large(max_bytes: int) -> Problem:
    # The rest of the body stays unread: closing beats draining it (a thread busy for up to gigabytes).
    detail = f"the body is larger than the {max_bytes}-byte limit"
    return Problem(413, "payload_too_large", detail, headers={"Connection": "close"})


def _check_charset(charset: str | None) -> None:
    if charset is not None and charset.strip().lower() not in _UTF8_CHARSETS:
        raise Problem(415, "unsupported_charset", f"charset {charset!r} is not supported; send UTF-8")


def _read(max_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Chunks of the raw body; a body shorter than its Content-Length is an error, not a short text.

    It reads the server's own input stream (gunicorn ends it at Content-Length or the last chunk): Werkzeug's
    wrapper would turn a read timeout into a generic 400 on a connection left open. So the size limit is counted
    here, which also covers chunked bodies.
    """
    current: Request = request._get_current_object()  # type: ignore[attr-defined]
    stream: IO[bytes] = current.environ["wsgi.input"]
    expected = current.content_length
    received = 0
    while chunk := _next_chunk(stream, chunk_bytes):
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes)
        yield chunk
    if expected is not None and received < expected:
        raise Problem(400, "truncated_body", f"the body ended after {received} of {expected} announced bytes")


def _next_chunk(stream: IO[bytes], chunk_bytes: int) -> bytes:
    try:
        return stream.read(chunk_bytes)
    # BlockingIOError: the kernel's receive timeout (requestctx.set_io_timeouts) ran out on the blocking socket;
    # TimeoutError: the same wait on a socket given a Python-level timeout (settimeout).
    except (BlockingIOError, TimeoutError):
        detail = "the body stopped arriving; send it without long pauses"
        raise Problem(408, "request_timeout", detail, headers={"Connection": "close"}) from None
    except (ParseException, NoMoreData) as error:  # broken chunked encoding, connection gone mid-body
        raise Problem(400, "malformed_body", f"the body could not be read: {error}") from None


def _multipart_events(
    boundary: str | None, max_bytes: int, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Field | File | Data]:
    """The parts' headers and data of a ``multipart/form-data`` body, decoded as it streams in; the rest of the body
    (epilogue) is read and dropped so gunicorn sees it fully read."""
    if not boundary:
        raise Problem(400, "malformed_multipart", "the multipart content type has no boundary")
    decoder = MultipartDecoder(boundary.encode("latin-1", "replace"))
    chunks = _read(max_bytes, chunk_bytes)
    ended = False
    while True:
        try:
            event = decoder.next_event()
        except ValueError as error:
            raise Problem(400, "malformed_multipart", f"the multipart body is malformed: {error}") from None
        if isinstance(event, NeedData):
            if ended:
                raise Problem(400, "malformed_multipart", "the multipart body ended before its closing boundary")
            chunk = next(chunks, None)
            ended = chunk is None
            decoder.receive_data(chunk)
        elif isinstance(event, (Field, File, Data)):
            yield event
        elif isinstance(event, Epilogue):
            break
    for _ in chunks:
        pass


def _part_charset(event: Field | File) -> None:
    _check_charset(parse_options_header(event.headers.get("Content-Type"))[1].get("charset"))


def _multipart_file(boundary: str | None, max_bytes: int, chunk_bytes: int) -> Iterator[bytes]:
    in_file = found = False
    for event in _multipart_events(boundary, max_bytes, chunk_bytes):
        if isinstance(event, (Field, File)):
            in_file = event.name == FILE_PART and not found
            if in_file:
                found = True
                _part_charset(event)
        elif in_file and event.data:
            yield event.data
    if not found:
        raise Problem(400, "malformed_multipart", f'the multipart body has no "{FILE_PART}" part')


def _json_text(max_bytes: int) -> Iterator[bytes]:
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise _too_large(max_bytes) from None
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if request.content_length is not None and len(data) < request.content_length:
        raise Problem(400, "truncated_body", f"the body ended after {len(data)} of {request.content_length} bytes")
    try:
        body = TextBody.model_validate_json(data)
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            raise Problem(400, "malformed_json", "the body is not valid JSON") from None
        raise Problem(422, "unprocessable", 'a JSON body must be an object with a string field "text"') from None
    text = body.text
    for start in range(0, len(text), CHUNK_BYTES):
        yield text[start : start + CHUNK_BYTES].encode("utf-8")


def form_parts(max_bytes: int) -> dict[str, bytes]:
    """Every part of a ``multipart/form-data`` body by name (the first of each), read whole: the home page's form.

    Held in memory rather than spooled to a temporary file, which a read-only root filesystem would refuse; the body
    limit bounds it as it bounds every other upload.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    if request.mimetype != "multipart/form-data":
        raise Problem(415, "unsupported_media_type", "send the form as multipart/form-data")
    parts: dict[str, bytearray] = {}
    current: bytearray | None = None
    for event in _multipart_events(request.mimetype_params.get("boundary"), max_bytes):
        if isinstance(event, (Field, File)):
            current = None if event.name in parts else parts.setdefault(event.name, bytearray())
            if isinstance(event, File) and event.filename:
                _part_charset(event)
        elif current is not None:
            current += event.data
    return {name: bytes(data) for name, data in parts.items()}


def raw_body(max_bytes: int) -> Iterator[bytes]:
    """The body's bytes as they arrive, at most ``max_bytes`` (the model routes parse them themselves)."""
    return _read(max_bytes)
