"""What every settings section is built from: ``setting`` (a field read from one variable, with its default, bounds
and meaning), the value kinds the sections share, and ``Section``, the base that trims values and reads an empty
one as the default. ``service.config`` composes the sections into ``Settings``."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Any, Literal, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticUseDefault

TRACES_EXPORTERS = ("otlp", "console")
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


class ConfigError(ValueError):
    """A variable holds a value the service cannot use; the message names it."""


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.fullmatch(value):
            raise
    return value


def address(host: str, port: int) -> str:
    """``host:port`` as a socket address or URL authority: an IPv6 literal in brackets."""
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass  # a host name
    return f"{host}:{port}"


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or "\x00" in value:
        raise ValueError(value)
    return value


def _base_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise ValueError(value)
    return value.rstrip("/")


def _json_object(value: str) -> str:
    if not isinstance(json.loads(value), dict):  # JSONDecodeError is a ValueError
        raise ValueError(value)
    return value


def _exporter(value: str) -> str:
    """OTEL_TRACES_EXPORTER lists exporters; the first one is used, ``none`` turns tracing off."""
    first = value.lower().split(",")[0].strip()
    if first not in (*TRACES_EXPORTERS, "none", ""):
        raise ValueError(value)
    return first


Host = Annotated[str, AfterValidator(_host)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
Exporter = Annotated[str, AfterValidator(_exporter)]
BaseUrl = Annotated[str, AfterValidator(_base_url)]
JsonObject = Annotated[str, AfterValidator(_json_object)]


def setting(
    env: str,
    default: Any,
    meaning: str,
    *,
    accepts: str | None = None,
    unit: str | None = None,
    table: bool = True,
    ge: float | None = None,
    le: float | None = None,
) -> Any:
    """A field read from ``env``. ``accepts`` is derived from the type and bounds unless given; ``unit`` names
    what a number counts (seconds, bytes, …); ``table=False`` keeps a variable out of the configuration page's table."""
    extra: dict[str, Any] = {"table": table}
    if accepts is not None:
        extra["accepts"] = accepts
    if unit is not None:
        extra["unit"] = unit
    return Field(default, validation_alias=env, description=meaning, json_schema_extra=extra, ge=ge, le=le)


class Section(BaseModel):
    """A group of settings (the service's own, or one feature's): a plain model read from the environment by
    ``service.config.load_settings``. pydantic-settings' sources added ~0.1 s of imports to every start for nothing
    this needs."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False, validate_default=False)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        """Values are trimmed; an empty one means the default. Choices and booleans are case-insensitive."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            raise PydanticUseDefault()
        annotation = cls.model_fields[info.field_name or ""].annotation
        if annotation is bool:
            if value.lower() not in _BOOLEANS:
                raise ValueError(value)
            return _BOOLEANS[value.lower()]
        if get_origin(annotation) is Literal:
            return value.lower()
        return value
