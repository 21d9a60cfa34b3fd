"""Opening a model file without letting it run code.

A skops file is a zip archive describing objects by type; skops rebuilds only the types it is told to trust (its own
list of numpy and scikit-learn types, plus any named in ``FLASK_SVC_MODEL_TRUSTED_TYPES``). Any other type stops the
service at start. A pickle or joblib file, by contrast, runs whatever code it names the moment it is opened: it is
refused without being opened unless ``FLASK_SVC_MODEL_ALLOW_PICKLE=true`` says the operator trusts the file.

The file is read once, and the same bytes are hashed, checked and loaded, so the file cannot change in between.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.inference.model import ServedModel, datatype_of

log = logging.getLogger(__name__)

_ZIP_MAGIC = b"PK\x03\x04"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class ModelRefused(Exception):
    """The model file cannot be served; the message is one line saying why and what would fix it."""


@dataclass(frozen=True)
class ModelSource:
    path: str
    name: str = ""  # empty: the file name without its extension
    version: str = ""  # empty: the first 12 hex digits of the file's sha256
    allow_pickle: bool = False
    trusted_types: tuple[str, ...] = ()


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ModelRefused(f"FLASK_SVC_MODEL_PATH={path!r} cannot be read: {error.strerror}") from None


def untrusted_types(data: bytes, source: ModelSource) -> list[str]:
    """Types in a skops file that neither skops nor the configuration trusts; raises when it is no skops file."""
    from skops.io import get_untrusted_types

    try:
        found = get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, json.JSONDecodeError) as error:
        raise ModelRefused(f"FLASK_SVC_MODEL_PATH={source.path!r} is not a valid skops file: {error}") from None
    return [name for name in found if name not in source.trusted_types]


def check(data: bytes, source: ModelSource) -> None:
    """Refuse what could run code when opened; never opens a pickle."""
    if not data.startswith(_ZIP_MAGIC):
        if source.allow_pickle:
            return
        raise ModelRefused(
            f"FLASK_SVC_MODEL_PATH={source.path!r} is not a skops file and was not opened (a pickle or joblib file "
            "runs code when loaded); save the model with skops.io.dump, or set FLASK_SVC_MODEL_ALLOW_PICKLE=true "
            "for a file you trust"
        )
    refused = untrusted_types(data, source)
    if refused:
        raise ModelRefused(
            f"FLASK_SVC_MODEL_PATH={source.path!r} holds untrusted type {refused[0]}"
            + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "")
            + "; if you trust it, name it in FLASK_SVC_MODEL_TRUSTED_TYPES"
        )


def inspect(source: ModelSource) -> None:
    """The start-up check, run before any worker starts: reads and checks the file, builds no object from it."""
    check(_read(source.path), source)


def load(source: ModelSource) -> ServedModel:
    """Read, check and build the model, then predict once: the warm-up also tells the output's datatype."""
    data = _read(source.path)
    check(data, source)
    if data.startswith(_ZIP_MAGIC):
        from skops.io import get_untrusted_types, loads

        estimator = loads(data, trusted=get_untrusted_types(data=data))  # what is left was allowed by name
    else:
        import joblib

        log.warning(
            "loading %s with pickle (FLASK_SVC_MODEL_ALLOW_PICKLE=true): it can run any code it contains",
            source.path,
        )
        estimator = joblib.load(io.BytesIO(data))  # the operator opted in; warned above
    features = getattr(estimator, "n_features_in_", None)
    if not callable(getattr(estimator, "predict", None)) or not isinstance(features, int) or features < 1:
        raise ModelRefused(
            f"FLASK_SVC_MODEL_PATH={source.path!r} holds a {type(estimator).__name__}, not a fitted estimator "
            "with predict() and n_features_in_"
        )
    name = source.name or Path(source.path).name.split(".")[0]
    if not _NAME.fullmatch(name):
        raise ModelRefused(f"FLASK_SVC_MODEL_NAME={name!r} is invalid: expected letters, digits, '_', '.', '-'")
    digest = hashlib.sha256(data).hexdigest()
    try:
        output = np.asarray(estimator.predict(np.zeros((1, features))))
    except Exception as error:
        raise ModelRefused(f"FLASK_SVC_MODEL_PATH={source.path!r}: a trial prediction failed: {error}") from None
    return ServedModel(
        name=name,
        version=source.version or digest[:12],
        sha256=digest,
        features=features,
        output_datatype=datatype_of(output.dtype),
        estimator=estimator,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m service.inference.loading PATH [--allow-pickle] [--trusted-type NAME]…``: the start-up check, run
    by the gunicorn master in a process of its own (numpy starts threads when imported, and the master must have
    none when it forks). Prints nothing when the file may be served, else one line; exits 2 then."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="check a model file the way the service does at start")
    parser.add_argument("path")
    parser.add_argument("--allow-pickle", action="store_true")
    parser.add_argument("--trusted-type", action="append", default=[])
    options = parser.parse_args(argv)
    try:
        inspect(ModelSource(options.path, allow_pickle=options.allow_pickle, trusted_types=tuple(options.trusted_type)))
    except ModelRefused as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
