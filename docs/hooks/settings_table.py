"""MkDocs hook: the configuration page's table of variables, generated from ``service.config.Settings`` at build
time, so the page cannot drift from the settings the service reads."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
PAGE = "configuration.md"
MARKER = "<!-- settings table: generated from service.config.Settings -->"


@dataclass(frozen=True)
class Variable:
    """One row of the configuration table."""

    env: str
    field: str
    default: str
    accepts: str
    meaning: str
    in_table: bool


def variables() -> tuple[Variable, ...]:
    """Every variable ``Settings`` reads, in the order it declares them, those kept out of the table included."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from service.config import VARIABLE_ACCEPTS, Settings

    rows = []
    for name, info in Settings.model_fields.items():
        if info.validation_alias is None:
            continue
        extra: dict[str, Any] = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        env, default = str(info.validation_alias), info.default
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        rows.append(Variable(env, name, shown, VARIABLE_ACCEPTS[env], info.description or "", extra["table"]))
    return tuple(rows)


def settings_rows() -> list[tuple[str, str, str, str]]:
    """(variable, default, accepts, meaning) of every setting shown in the table, in the order Settings declares."""
    return [(v.env, v.default or "(unset)", v.accepts, v.meaning) for v in variables() if v.in_table]


def settings_table() -> str:
    lines = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    for env, default, accepts, meaning in settings_rows():
        lines.append(f"| `{env}` | `{default}` | {accepts} | {meaning} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{PAGE} lost its marker {MARKER!r}: the settings table has nowhere to go")
    return markdown.replace(MARKER, settings_table())
