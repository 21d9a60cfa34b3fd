"""What the observability tests share: the chart's helm, found as the chart tests find it."""

from __future__ import annotations

import pytest

from tests.chart.conftest import find_tool


@pytest.fixture(scope="module")
def helm() -> str:
    return str(find_tool("helm"))
