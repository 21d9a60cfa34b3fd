"""``/docs``: Swagger UI over ``/openapi.json``, its assets read from the installed flask-openapi3-swagger package.

No CDN (clusters are often offline) and nothing written to disk (the root filesystem may be read-only). The plugin's
own views stay off (``doc_ui=False``): their page starts Swagger UI with an inline script, which the CSP forbids.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, render_template, send_from_directory

from service.page.views import WEB
from service.problems import Problem

SWAGGER_DIR = Path(str(files("flask_openapi3_swagger") / "templates" / "swagger"))
# Only what the page loads; the rest of the package's folder is not served.
ASSETS = {"swagger-ui.css": "css/swagger-ui.css", "swagger-ui-bundle.js": "js/swagger-ui-bundle.js"}
ASSET_MAX_AGE = 24 * 3600

bp = Blueprint("docs", __name__, template_folder=WEB / "templates")


@bp.get("/docs")
def docs() -> str:
    return render_template("docs.html")


@bp.get("/docs/assets/<name>")
def asset(name: str) -> Response:
    relative = ASSETS.get(name)
    if relative is None:
        raise Problem(404, "not_found", f"no documentation asset named {name!r}")
    return send_from_directory(SWAGGER_DIR, relative, max_age=ASSET_MAX_AGE)
