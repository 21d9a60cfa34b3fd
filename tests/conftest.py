"""Suite-wide rules. Under CI=true a skipped test is a failure: every tool a test needs must be installed by
`make setup`. The e2e suite is the exception — it needs a Kubernetes cluster and runs in its own workflow."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    report = yield
    if CI and getattr(report, "skipped", False) and "e2e" not in item.keywords and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"  # type: ignore[attr-defined]
        report.longrepr = f"skipped under CI=true, which is a failure: {reason}"  # type: ignore[attr-defined]
    return report
