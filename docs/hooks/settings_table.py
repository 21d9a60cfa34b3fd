"""MkDocs hook: the configuration page's table of variables, generated from ``service.config.Settings`` at build
time, so the page cannot drift from the settings the service reads."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
PAGE = "configuration.md"
MARKER = "<!-- settings table: generated from service.config.Settings -->"


def settings_rows() -> list[tuple[str, str, str, str]]:
    """(variable, default, accepts, meaning) of every setting shown in the table, in the order Settings declares."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from service.config import VARIABLES

    return [(v.env, v.default or "(unset)", v.accepts, v.meaning) for v in VARIABLES if v.in_table]


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
