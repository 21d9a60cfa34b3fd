"""GET / negotiation, the page's security headers, its form's 4xx answers and /docs' assets, on real gunicorn.

The browser side (rendering, form, drills, Swagger UI) is in tests/browser.
"""

from __future__ import annotations

import requests

from tests.support.server import Server, running_server

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_json_clients_get_the_info_document(server: Server) -> None:
    info = requests.get(server.url + "/api/v1/info", timeout=5).json()
    for accept in ("application/json", "*/*", None):
        headers = {"Accept": accept} if accept else {}
        response = requests.get(server.url + "/", headers=headers, timeout=5)
        assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
        assert "Accept" in response.headers["Vary"]
        body = response.json()
        assert body.keys() == info.keys() and body["pid"] == info["pid"] and body["pod"] == info["pod"]


def test_browsers_get_the_page_with_a_strict_policy(server: Server) -> None:
    response = requests.get(server.url + "/", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    policy = response.headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" not in response.text and "style=" not in response.text
    assert "Drills" not in response.text  # no drill buttons without FLASK_SVC_DEBUG_ENDPOINTS
    # The drill toggles do not exist: what answers is the asset route's 405.
    assert requests.post(server.url + "/ui/fault", data={"fault": "on"}, timeout=5).status_code in (404, 405)
    assert requests.get(server.url + "/api/v1/info", timeout=5).status_code == 200


def test_docs_are_served_by_the_service(server: Server) -> None:
    page = requests.get(server.url + "/docs", timeout=5)
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    for name, media_type in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")):
        asset = requests.get(f"{server.url}/docs/assets/{name}", timeout=5)
        assert asset.status_code == 200 and asset.headers["Content-Type"].startswith(media_type)
        assert asset.headers["X-Content-Type-Options"] == "nosniff" and len(asset.content) > 100_000
    missing = requests.get(server.url + "/docs/assets/..%2Fplugins.py", timeout=5)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"


def _post(server: Server, headers: dict[str, str] | None = None, **kwargs: object) -> requests.Response:
    headers = {"Accept": BROWSER_ACCEPT, **(headers or {})}
    return requests.post(server.url + "/", headers=headers, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_bad_form_input_gets_a_clear_4xx_page(server: Server) -> None:
    cases = [
        (_post(server, files={"text": (None, ""), "top": (None, "10")}), 400, "Paste some text"),
        (_post(server, files={"text": (None, "a b"), "top": (None, "1000")}), 422, "from 1 to 100"),
        (_post(server, files={"text": (None, "a b"), "top": (None, "ten")}), 422, "from 1 to 100"),
        (_post(server, files={"text": (None, "a b"), "stopwords": (None, "xx")}), 422, "Stop words"),
        (_post(server, files={"file": ("a.txt", b"\xff\xfe\x00")}), 400, "not valid UTF-8"),
        (_post(server, data="just text", headers={"Content-Type": "text/plain"}), 415, "multipart/form-data"),
        (_post(server, data=b"--x\r\nno end", headers={"Content-Type": "multipart/form-data; boundary=x"}), 400, ""),
    ]
    for response, status, message in cases:
        assert response.status_code == status, (response.status_code, response.text[:300])
        assert response.headers["Content-Type"].startswith("text/html")
        assert message in response.text


def test_form_bodies_keep_the_upload_limit() -> None:
    with running_server({"FLASK_SVC_MAX_UPLOAD_BYTES": "1000"}) as server:
        response = _post(server, files={"text": (None, "word " * 400)})
    assert response.status_code == 413 and "1000-byte limit" in response.text


def test_the_form_counts_like_the_api(server: Server) -> None:
    text = "one two two three three three"
    page = _post(server, files={"text": (None, text), "file": ("more.txt", b"three"), "top": (None, "2")})
    assert page.status_code == 200
    api = requests.post(
        server.url + "/api/v1/analyze?top=2",
        data=text + "\nthree",
        headers={"Content-Type": "text/plain"},
        timeout=5,
    ).json()
    assert api["top"][0] == {"word": "three", "count": 4}
    assert "<td>three</td><td>4</td>" in page.text and f'<dd id="tokens">{api["tokens"]}</dd>' in page.text


def test_the_page_stays_up_during_a_fault_drill(debug_server: Server) -> None:
    url = debug_server.url
    requests.post(url + "/fault/enable", timeout=5)
    try:
        assert requests.get(url + "/api/v1/info", timeout=5).status_code == 500
        page = requests.get(url + "/", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
        assert page.status_code == 200 and "fault injection on" in page.text
        stopped = requests.post(url + "/ui/fault", data={"fault": "off"}, timeout=5, allow_redirects=False)
        assert stopped.status_code == 303 and stopped.headers["Location"] == "/"
        assert requests.get(url + "/api/v1/info", timeout=5).status_code == 200
        assert requests.post(url + "/ui/fault", data={"fault": "maybe"}, timeout=5).status_code == 422
    finally:
        requests.post(url + "/fault/disable", timeout=5)
