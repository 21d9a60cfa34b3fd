"""The app's JSON responses are Flask's own bytes: ``CompactJSON`` only makes its encoder once."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from service.core.openapi import CompactJSON


@dataclasses.dataclass
class Point:
    x: int
    label: str


VALUES: list[Any] = [
    {"b": 1, "a": [1.5, None, True], "é": "naïve ☃ \u2028", "nested": {"z": [], "y": {}}},
    [datetime.datetime(2026, 12, 7, 20, 0, tzinfo=datetime.UTC), datetime.date(2026, 12, 7)],
    {"id": uuid.UUID(int=7), "price": decimal.Decimal("1.10"), "point": Point(1, "p")},
    "text",
    None,
]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("value", VALUES)
def test_the_same_bytes_as_flasks_provider(value: Any, debug: bool) -> None:
    app = Flask(__name__)
    app.debug = debug
    flasks = DefaultJSONProvider(app)
    flasks.sort_keys = False
    with app.app_context():
        assert CompactJSON(app).response(value).data == flasks.response(value).data
        assert CompactJSON(app).response(**{"a": value}).data == flasks.response(**{"a": value}).data
