"""A loaded model and what it tells clients about itself (the Open Inference Protocol's model metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sklearn

PLATFORM = "scikit-learn"
INPUT_NAME = "input-0"
OUTPUT_NAME = "predict"

# numpy dtype kind and size → Open Inference Protocol datatype.
_DATATYPES = {
    ("f", 2): "FP16",
    ("f", 4): "FP32",
    ("f", 8): "FP64",
    ("i", 1): "INT8",
    ("i", 2): "INT16",
    ("i", 4): "INT32",
    ("i", 8): "INT64",
    ("u", 1): "UINT8",
    ("u", 2): "UINT16",
    ("u", 4): "UINT32",
    ("u", 8): "UINT64",
    ("b", 1): "BOOL",
}


# The protocol's datatype → the little-endian numpy dtype its binary form uses (the binary tensor data extension).
BINARY_DTYPES = {name: np.dtype(f"{kind}{size}").newbyteorder("<") for (kind, size), name in _DATATYPES.items()}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The protocol's name for a numpy dtype; text and Python objects travel as BYTES."""
    return _DATATYPES.get((dtype.kind, dtype.itemsize), "BYTES")


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    sha256: str
    features: int
    output_datatype: str
    estimator: Any

    @property
    def platform(self) -> str:
        return PLATFORM

    def predict(self, batch: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        """One prediction per row."""
        # Requests are checked for NaN and infinity before they get here, so scikit-learn need not look again.
        with sklearn.config_context(assume_finite=True):
            return np.asarray(self.estimator.predict(batch))

    def metadata(self) -> dict[str, Any]:
        """The protocol's model metadata response."""
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.platform,
            "inputs": [{"name": INPUT_NAME, "datatype": "FP64", "shape": [-1, self.features]}],
            "outputs": [{"name": OUTPUT_NAME, "datatype": self.output_datatype, "shape": [-1]}],
            "properties": {"sha256": self.sha256, "scikit_learn_version": sklearn.__version__},
        }
