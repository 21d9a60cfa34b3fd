"""A tensor's values, checked against its datatype and turned into the matrix the model predicts on, whether they came
as JSON numbers or as the binary tensor data extension's raw little-endian bytes; and an output's raw bytes.

protocol.py reads the request documents and says which tensor and which form; this module holds what both forms
share (the datatypes, their ranges, the refusal naming the field) so that JSON and binary values pass the same checks.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from service.inference.model import BINARY_DTYPES

_FLOATS = ("FP16", "FP32", "FP64")
_INTEGERS = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
NUMERIC_DATATYPES = _FLOATS + _INTEGERS
_LARGEST = sys.float_info.max
_NUMBER_TYPES = {int, float}


class InvalidInput(Exception):
    """A request the model cannot take: ``field`` is where it went wrong (``inputs[0].shape``); 422 or 413."""

    def __init__(self, field: str, detail: str, status: int = 422) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
        self.status = status


def flatten(data: list[Any]) -> list[Any]:
    """Row-major values whether the client nested them by row or sent them flat."""
    if not data or not isinstance(data[0], list):
        if any(isinstance(item, list) for item in data):
            return _flatten_any(data)
        return data
    if all(isinstance(row, list) for row in data):
        flat = list(itertools.chain.from_iterable(data))
        if not any(isinstance(item, list) for item in flat):
            return flat
    return _flatten_any(data)


def _flatten_any(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten_any(item) if isinstance(item, list) else [item])
    return flat


def _range(datatype: str) -> tuple[float, float] | None:
    """The values a datatype can hold, when narrower than a 64-bit float's."""
    if datatype in ("FP16", "FP32"):
        largest = float(np.finfo(datatype.replace("FP", "float").lower()).max)
        return -largest, largest
    if datatype in _INTEGERS:
        info = np.iinfo(datatype.lower())
        return float(info.min), float(info.max)
    return None


def json_matrix(
    values: list[Any], rows: int, features: int, datatype: str, where: Callable[[int], str]
) -> npt.NDArray[np.float64]:
    """Numbers only (a bool is not one), whole numbers for an integer datatype, all finite and within the datatype's
    range; ``where`` names a value. The checks run over the whole array at once; the slow search for the culprit runs
    only once one failed."""
    if not set(map(type, values)) <= _NUMBER_TYPES:
        index = next(i for i, value in enumerate(values) if type(value) not in _NUMBER_TYPES)
        raise InvalidInput(where(index), f"{values[index]!r} is not a number")
    try:
        matrix = np.array(values, dtype=np.float64)
    except OverflowError:  # JSON integers have no size limit
        index = next(i for i, value in enumerate(values) if type(value) is int and not -_LARGEST <= value <= _LARGEST)
        raise InvalidInput(where(index), "the value is out of range for a 64-bit float") from None
    finite = np.isfinite(matrix)
    if not finite.all():
        raise InvalidInput(where(int(np.argmin(finite))), "NaN and infinite values are refused")
    _check_values(matrix, datatype, lambda index: (where(index), repr(values[index])))
    return matrix.reshape(rows, features)


def _check_values(matrix: npt.NDArray[np.float64], datatype: str, culprit: Callable[[int], tuple[str, str]]) -> None:
    """Whole numbers for an integer datatype, and every value within the datatype's range."""
    if datatype in _INTEGERS:
        whole = matrix == np.floor(matrix)
        if not whole.all():
            field, shown = culprit(int(np.argmin(whole)))
            raise InvalidInput(field, f"{shown} is not a whole number")
    bounds = _range(datatype)
    if bounds is not None:
        inside = (matrix >= bounds[0]) & (matrix <= bounds[1])
        if not inside.all():
            field, shown = culprit(int(np.argmin(inside)))
            raise InvalidInput(field, f"{shown} is out of range for {datatype} ({bounds[0]:g} to {bounds[1]:g})")


def binary_matrix(
    shape: list[int], datatype: str, features: int, size: int, binary: memoryview | None
) -> npt.NDArray[np.float64]:
    """The input's raw values: sizes checked against the shape and the bytes received before any value is read."""
    field = "inputs[0].parameters.binary_data_size"
    rows = shape[0]
    dtype = BINARY_DTYPES[datatype]
    expected = rows * features * dtype.itemsize
    if size != expected:
        raise InvalidInput(field, f"{size} bytes where shape {shape} of {datatype} needs {expected}")
    received = 0 if binary is None else len(binary)
    if received != size:
        raise InvalidInput(field, f"{size} bytes announced, {received} binary bytes follow the JSON header", 400)
    raw = np.frombuffer(binary if binary is not None else b"", dtype=dtype)
    matrix = raw.astype(np.float64)
    finite = np.isfinite(matrix)
    if not finite.all():
        raise InvalidInput(f"inputs[0].data[{int(np.argmin(finite))}]", "NaN and infinite values are refused")
    _check_values(matrix, datatype, lambda index: (f"inputs[0].data[{index}]", repr(raw[index].item())))
    return matrix.reshape(rows, features)


def bytes_tensor(values: npt.NDArray[Any]) -> bytes:
    """The extension's BYTES form: each element's UTF-8 bytes after their length (4 bytes, little-endian)."""
    parts = []
    for value in values.tolist():
        encoded = value if isinstance(value, bytes) else str(value).encode()
        parts += [len(encoded).to_bytes(4, "little"), encoded]
    return b"".join(parts)
