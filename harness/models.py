"""Model files for the model-serving tests: the default Iris model, a skops file with a type nobody trusted, and a
pickle that runs code when opened."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import jsonschema

from service.inference import train

SCHEMA_FILE = Path(__file__).with_name("open_inference_rest.schema.json")
_SCHEMA = json.loads(SCHEMA_FILE.read_text())


def check_protocol(document: Any, definition: str) -> None:
    """Validate against one body of the Open Inference Protocol's published REST definition (see the file)."""
    jsonschema.validate(document, {**_SCHEMA, "$ref": f"#/$defs/{definition}"})


def write_iris(path: Path) -> Path:
    train.main([str(path)])
    return path


class Halver:
    """A scikit-learn-style estimator skops does not know: its type is untrusted until named in the configuration."""

    n_features_in_ = 4

    def fit(self, features: Any, labels: Any = None) -> Halver:
        return self

    def predict(self, features: Any) -> Any:
        return features[:, 0] / 2


UNTRUSTED_TYPE = f"{Halver.__module__}.{Halver.__qualname__}"


def write_untrusted(path: Path) -> Path:
    from skops.io import dump

    dump(Halver(), path)
    return path


class _CreatesFile:
    """Unpickling this calls open(marker, "w"): the file appearing proves the pickle's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def write_code_running_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps(_CreatesFile(marker)))
    return path
