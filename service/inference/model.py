"""A loaded model and what it tells clients about itself (the Open Inference Protocol's model metadata)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    # The estimator's predict, or for a pipeline its steps called in turn (see _chain).
    _predict: Callable[[Any], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_predict", _chain(self.estimator))

    @property
    def platform(self) -> str:
        return PLATFORM

    def predict(self, batch: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        """One prediction per row."""
        # Requests are checked for NaN and infinity before they get here, so scikit-learn need not look again; the
        # parameters are the fitted estimator's own, checked when it was fitted.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return np.asarray(self._predict(batch))

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


def _chain(estimator: Any) -> Callable[[Any], Any]:
    """What ``estimator.predict`` computes. For a scikit-learn Pipeline (nested ones too), its transformers' transform
    and its final estimator's predict, called in turn as Pipeline.predict calls them, without the Pipeline's own
    per-call checks (is it fitted, metadata routing), about a sixth of a small request's predict: the model was
    fitted and predicted once when it was loaded. Each step still checks its input."""
    from sklearn.pipeline import Pipeline

    if type(estimator) is not Pipeline:
        return estimator.predict  # type: ignore[no-any-return]
    *transformers, (_, final) = estimator.steps
    return _in_turn([*_transforms(transformers), _chain(final)])


def _transforms(steps: list[tuple[str, Any]]) -> list[Callable[[Any], Any]]:
    """The steps' transform methods in order, a nested pipeline's steps in its place; "passthrough" steps skipped,
    as Pipeline does."""
    from sklearn.pipeline import Pipeline

    calls: list[Callable[[Any], Any]] = []
    for _, step in steps:
        if type(step) is Pipeline:
            calls += _transforms(step.steps)
        elif step is not None and not (isinstance(step, str) and step == "passthrough"):
            calls.append(step.transform)
    return calls


def _in_turn(calls: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def chained(batch: Any) -> Any:
        for call in calls:
            batch = call(batch)
        return batch

    return chained
