from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.server import Server, running_server


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One service with default settings, shared by a module's tests."""
    with running_server() as srv:
        yield srv
