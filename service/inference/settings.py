"""Model serving's settings section (``FLASK_SVC_MODEL_*``), composed into ``service.config.Settings``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from service.config_fields import AbsolutePath, Section, setting

_MODEL_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _model_word(value: str) -> str:
    if not _MODEL_WORD.fullmatch(value):
        raise ValueError(value)
    return value


def _type_names(value: str) -> str:
    """A comma-separated list of dotted type names, kept as written (``model_trusted_type_names`` splits it)."""
    if not all(_DOTTED_NAME.fullmatch(name.strip()) for name in value.split(",") if name.strip()):
        raise ValueError(value)
    return value


ModelWord = Annotated[str, AfterValidator(_model_word)]
TypeNames = Annotated[str, AfterValidator(_type_names)]


class ModelSettings(Section):
    model_path: AbsolutePath = setting(
        "FLASK_SVC_MODEL_PATH",
        "",
        "The model to serve (a skops file); unset: no model endpoints. The `-ml` image sets its Iris model.",
        accepts="an absolute file path",
    )
    model_name: ModelWord = setting(
        "FLASK_SVC_MODEL_NAME",
        "",
        "The model's name in the URLs (`/v2/models/<name>`); unset: the file name without its extension.",
        accepts="letters, digits, '_', '.', '-' (up to 128)",
    )
    model_version: ModelWord = setting(
        "FLASK_SVC_MODEL_VERSION",
        "",
        "The model's version; unset: the first 12 hex digits of the file's sha256.",
        accepts="letters, digits, '_', '.', '-' (up to 128)",
    )
    model_allow_pickle: bool = setting(
        "FLASK_SVC_MODEL_ALLOW_PICKLE",
        False,
        "Also load pickle/joblib files, which run any code they contain: only for a file you trust.",
    )
    model_trusted_types: TypeNames = setting(
        "FLASK_SVC_MODEL_TRUSTED_TYPES",
        "",
        "Types a skops file may hold beyond those skops trusts (numpy, scikit-learn estimators).",
        accepts="comma-separated dotted type names (module.Type)",
    )
    model_max_instances: int = setting(
        "FLASK_SVC_MODEL_MAX_INSTANCES",
        1024,
        "Most instances one inference request may carry; more get 413.",
        ge=1,
        le=100_000,
    )
    model_max_body_bytes: int = setting(
        "FLASK_SVC_MODEL_MAX_BODY_BYTES",
        0,
        "Largest inference request body; larger ones get 413 before they are read. 0: derived from the model, "
        "16 KiB + FLASK_SVC_MODEL_MAX_INSTANCES * (features * 48 + 16) bytes (docs/model-serving.md).",
        unit="bytes",
        ge=0,
        le=1 << 30,
    )

    @property
    def model_enabled(self) -> bool:
        return bool(self.model_path)

    @property
    def model_trusted_type_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.model_trusted_types.split(",") if name.strip())
