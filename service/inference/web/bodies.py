"""Reading an inference request's body: its size refused before and while it is read, its JSON checked against the
protocol's structure (each refusal naming the field), the binary tensor extension split off."""

from __future__ import annotations

from typing import TypeVar

from flask import request
from pydantic import ValidationError

from service.inference.protocol import InferenceRequest, PredictRequest
from service.problems import Problem
from service.uploads import raw_body

BINARY_HEADER = "Inference-Header-Content-Length"  # the binary tensor data extension: the JSON header's length
Body = TypeVar("Body", InferenceRequest, PredictRequest)


def too_large(detail: str) -> Problem:
    # The rest of the body is never read: the connection cannot carry another request.
    return Problem(413, "payload_too_large", detail, headers={"Connection": "close"})


def read_body(limit: int) -> bytes:
    """The whole body, refused on its Content-Length before a byte is read, and while reading (chunked bodies)."""
    announced = request.content_length
    if announced is not None and announced > limit:
        raise too_large(f"the body ({announced} bytes) is larger than the {limit}-byte limit of inference requests")
    try:
        return b"".join(raw_body(limit))
    except Problem as error:
        if error.status == 413:
            raise too_large(f"the body is larger than the {limit}-byte limit of inference requests") from None
        raise


def split_binary(data: bytes, header: str) -> tuple[bytes, memoryview]:
    """The binary extension's body: its JSON header, then the raw tensors (not copied)."""
    length = int(header) if header.strip().isdigit() else -1
    if not 0 <= length <= len(data):
        detail = f"{BINARY_HEADER}: {header!r} is not a length within the body's {len(data)} bytes"
        raise Problem(400, "invalid_binary_header", detail, field=BINARY_HEADER)
    return data[:length], memoryview(data)[length:]


def checked_body(schema: type[Body], limit: int) -> tuple[Body, memoryview | None]:
    """The JSON body checked against the protocol's structure, and the binary tensors after it (V2 only, with the
    binary extension's header); each refusal names the field."""
    header = request.headers.get(BINARY_HEADER) if schema is InferenceRequest else None
    binary_type = header is not None and request.mimetype == "application/octet-stream"
    if request.mimetype and not request.is_json and not binary_type:
        detail = f"send the request as application/json (or with no Content-Type); got {request.mimetype}"
        raise Problem(415, "unsupported_media_type", detail)
    data = read_body(limit)
    binary = None
    if header is not None:
        data, binary = split_binary(data, header)
    try:
        return schema.model_validate_json(data), binary
    except ValidationError as error:
        raise refusal(error) from None


def refusal(error: ValidationError) -> Problem:
    """A body the protocol's structure refuses: its first fault, named by where it is."""
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return Problem(400, "invalid_json", f"the body is not valid JSON: {first['msg']}")
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    where = where or "body"
    return Problem(422, "invalid_inference_request", f"{where}: {first['msg']}", field=where)
