"""tensors.py: a tensor's values, JSON or binary, checked against the datatype and read into the matrix (driven
through v2_batch, as the views call it)."""

from __future__ import annotations

import numpy as np
import pytest

from service.inference.model import ServedModel
from service.inference.protocol import InvalidInput, v2_batch
from tests.unit.inference.conftest import binary_request, v2_request


def test_values_at_the_edge_of_a_datatype_are_taken(model: ServedModel) -> None:
    assert v2_batch(v2_request([1, 4], [65504.0, -65504.0, 0, 1], "FP16"), model, 10)[0, 0] == 65504.0
    assert v2_batch(v2_request([1, 4], [3.4e38, -3.4e38, 0, 1], "FP32"), model, 10)[0, 1] == -3.4e38
    assert v2_batch(v2_request([1, 4], [1e300, -1e300, 0, 1], "FP64"), model, 10)[0, 0] == 1e300


def test_an_out_of_range_value_is_named_with_the_range(model: ServedModel) -> None:
    with pytest.raises(
        InvalidInput, match=r"inputs\[0\]\.data\[0\]: 70000\.0 is out of range for FP16 \(-65504 to 65504\)"
    ):
        v2_batch(v2_request([1, 4], [70000.0, 0, 0, 0], "FP16"), model, 10)


@pytest.mark.parametrize(("datatype", "dtype"), [("FP32", "<f4"), ("FP64", "<f8"), ("FP16", "<f2"), ("INT16", "<i2")])
def test_binary_tensors_are_read_little_endian(model: ServedModel, datatype: str, dtype: str) -> None:
    values = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=dtype)
    batch = v2_batch(binary_request([2, 4], datatype, values.nbytes), model, 10, memoryview(values.tobytes()))
    assert batch.tolist() == values.astype(float).tolist()
