"""/docs and its assets, served from the installed Swagger UI package, in process."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from service.page.docs import ASSETS
from service.problems import PROBLEM_JSON


def test_the_page_is_served_with_a_policy(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    for name in ASSETS:
        assert f"/docs/assets/{name}" in page.text


@pytest.mark.parametrize(
    ("name", "media_type"), [("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")]
)
def test_assets(client: FlaskClient, name: str, media_type: str) -> None:
    asset = client.get(f"/docs/assets/{name}")
    assert asset.status_code == 200 and asset.mimetype == media_type
    assert asset.headers["X-Content-Type-Options"] == "nosniff" and len(asset.data) > 100_000
    assert asset.headers["Cache-Control"] == "public, max-age=86400"


@pytest.mark.parametrize("name", ["..%2Fplugins.py", "index.html", "swagger-ui.js"])
def test_nothing_else_is_served(client: FlaskClient, name: str) -> None:
    missing = client.get(f"/docs/assets/{name}")
    assert missing.status_code == 404 and missing.mimetype == PROBLEM_JSON
