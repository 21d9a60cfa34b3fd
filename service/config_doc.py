"""The configuration table, generated from ``Settings`` (``python -m service.config_doc``): not imported at run
time. ``rows`` gives each documented variable for any renderer (the README's table, the documentation site)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from service.config import VARIABLES, Variable


def rows() -> Iterator[Variable]:
    """The variables the table documents, in ``Settings``' order: name (``env``), ``default``, ``accepts``, and
    ``meaning``."""
    return (variable for variable in VARIABLES if variable.in_table)


def readme_table() -> str:
    """The README's configuration table."""
    lines = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    for v in rows():
        lines.append(f"| `{v.env}` | `{v.default or '(unset)'}` | {v.accepts} | {v.meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(readme_table() + "\n")
