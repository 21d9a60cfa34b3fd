"""What the master asks of every feature before its workers start, without knowing which features there are.

A feature's web package (one of ``service.app.FEATURES``) may define either hook:

- ``check_before_workers(settings) -> str | None``: a reason to refuse the start, as one line (the master prints
  ``flask-svc: <line>`` and exits 2 before any worker starts). It must start no thread in the master: whatever
  imports a heavy library runs in a process of its own.
- ``startup_notes(settings) -> list[str]``: lines the master logs as warnings once it is ready.

Under reload the master must not import the app's modules (a worker started after a change would inherit the old
ones), so there the hooks run in a child interpreter: ``python -m service.server.features``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from types import ModuleType

from service.config import Settings, load_settings

REFUSED = 2  # the exit status of a start refused before any worker: the same as a configuration error's


def _features() -> Iterable[ModuleType]:
    from service.app import FEATURES

    return FEATURES


def refusal(settings: Settings) -> str | None:
    """The first feature's reason to refuse the start, or None."""
    for feature in _features():
        check = getattr(feature, "check_before_workers", None)
        line = check(settings) if check else None
        if line:
            return str(line)
    return None


def startup_notes(settings: Settings) -> list[str]:
    """Every feature's start notes, in the order of ``FEATURES``."""
    return [note for feature in _features() for note in getattr(feature, "startup_notes", lambda _: [])(settings)]


def refusal_and_notes_apart() -> tuple[str | None, list[str]]:
    """``refusal`` and ``startup_notes`` run in a child interpreter (see the module): it reads this process's
    environment, and so the same settings."""
    ran = subprocess.run([sys.executable, "-m", __name__], capture_output=True, text=True, check=False)
    if ran.returncode == REFUSED:
        return (ran.stderr.strip().splitlines() or [""])[-1], []
    if ran.returncode != 0:
        return f"the start checks exited {ran.returncode}: {ran.stderr.strip()}", []
    return None, ran.stdout.splitlines()


def main() -> int:
    settings = load_settings()
    line = refusal(settings)
    if line:
        print(line, file=sys.stderr)
        return REFUSED
    for note in startup_notes(settings):
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
