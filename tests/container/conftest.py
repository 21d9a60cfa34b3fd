"""Fixtures for the container suite: a Docker engine, the image built once per session, a hardened container.

The engine and debootstrap come from `make setup` (mk/container.mk); without them these tests skip, which
CI=true turns into failures.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.container import containerlib as lib

_built: list[lib.BuiltImage] = []


@pytest.fixture(scope="session")
def engine() -> None:
    problem = lib.engine_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def image(engine: None) -> lib.BuiltImage:
    """flask-svc:test, built from the working tree on the stand-in base (both cached between runs)."""
    built = lib.build_image(lib.TEST_TAG)
    _built.append(built)
    return built


@pytest.fixture(scope="session")
def ml_image(engine: None) -> lib.BuiltImage:
    """flask-svc:test-ml, the model-serving variant (`--target ml`), built like the default one."""
    built = lib.build_image(lib.ML_TEST_TAG, target="ml")
    _built.append(built)
    return built


@pytest.fixture(scope="session")
def service(image: lib.BuiltImage) -> Iterator[lib.Container]:
    """One hardened container (read-only root, no capabilities) with the debug endpoints on."""
    container = lib.run_container(image.id, env={"FLASK_SVC_DEBUG_ENDPOINTS": "true"})
    try:
        lib.wait_ready(container)
        yield container
    finally:
        container.remove()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for built in _built:
        try:
            size = lib.image_size(built.id) / 1e6
        except (RuntimeError, OSError, ValueError):
            continue
        terminalreporter.write_line(
            f"container: {built.tag} {size:.1f} MB on {built.base} (goal ≤ 150 MB on python:3.12-slim); "
            f"build {built.build_seconds:.1f} s"
        )
