"""GET / negotiation, the page's security headers, its form's answers and the drill toggles, in process.

Rendering, the form in a real browser and the drills' buttons are in tests/browser.
"""

from __future__ import annotations

import io
import re
from typing import Any

from flask.testing import FlaskClient

from service.names import ANALYZE_PATH, LIFECYCLE_EXTENSION
from tests.app.conftest import BROWSER_ACCEPT, make_app, sample


def _post(client: FlaskClient, **kwargs: Any) -> Any:
    """What a browser sends: the form as multipart/form-data (a dict of fields), asking for HTML."""
    if isinstance(kwargs.get("data"), dict):
        kwargs.setdefault("content_type", "multipart/form-data")
    return client.post("/", headers={"Accept": BROWSER_ACCEPT}, **kwargs)


def test_json_clients_get_the_info_document(client: FlaskClient) -> None:
    info = client.get("/api/v1/info").get_json()
    for accept in ("application/json", "*/*", None):
        response = client.get("/", headers={"Accept": accept} if accept else {})
        assert response.status_code == 200 and response.mimetype == "application/json"
        assert "Accept" in response.headers["Vary"]
        assert response.get_json().keys() == info.keys()


def test_browsers_get_the_page_with_a_strict_policy(client: FlaskClient) -> None:
    response = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # No inline script or style: the only script is the batch section's own file, served by the page.
    assert re.findall(r"<script[^>]*>[^<]*</script>", response.text) == ['<script src="/ui/batch.js" defer></script>']
    assert "style=" not in response.text
    assert "Drills" not in response.text  # no drill buttons without FLASK_SVC_DEBUG_ENDPOINTS
    assert client.post("/ui/fault", data={"fault": "on"}).status_code in (404, 405)


def test_bad_form_input_gets_a_clear_4xx_page(client: FlaskClient) -> None:
    cases = [
        (_post(client, data={"text": "", "top": "10"}), 400, "Paste some text"),
        (_post(client, data={"text": "a b", "top": "1000"}), 422, "from 1 to 100"),
        (_post(client, data={"text": "a b", "top": "ten"}), 422, "from 1 to 100"),
        (_post(client, data={"text": "a b", "stopwords": "xx"}), 422, "Stop words"),
        (_post(client, data={"file": (io.BytesIO(b"\xff\xfe\x00"), "a.txt")}), 400, "not valid UTF-8"),
        (_post(client, data="just text", content_type="text/plain"), 415, "multipart/form-data"),
        (_post(client, data=b"--x\r\nno end", content_type="multipart/form-data; boundary=x"), 400, ""),
    ]
    for response, status, message in cases:
        assert response.status_code == status, (response.status_code, response.text[:300])
        assert response.mimetype == "text/html" and message in response.text


def test_form_bodies_keep_the_upload_limit() -> None:
    response = _post(make_app(FLASK_SVC_MAX_UPLOAD_BYTES="1000").test_client(), data={"text": "word " * 400})
    assert response.status_code == 413 and "1000-byte limit" in response.text


def test_the_form_counts_like_the_api_and_is_measured_like_it() -> None:
    app = make_app()
    client = app.test_client()
    text = "one two two three three three"
    page = _post(client, data={"text": text, "file": (io.BytesIO(b"three"), "more.txt"), "top": "2"})
    assert page.status_code == 200
    api = client.post(ANALYZE_PATH + "?top=2", data=text + "\nthree", content_type="text/plain").get_json()
    assert api["top"][0] == {"word": "three", "count": 4}
    assert "<td>three</td><td>4</td>" in page.text and f'<dd id="tokens">{api["tokens"]}</dd>' in page.text
    assert sample(app, "flask_svc_analysis_duration_seconds_count", {"endpoint": "analyze"}) == 2
    assert sample(app, "flask_svc_tokens_total") == 2 * api["tokens"]


def test_the_page_stays_up_during_a_fault_drill(debug_client: FlaskClient) -> None:
    debug_client.post("/fault/enable")
    assert debug_client.get("/api/v1/info").status_code == 500
    page = debug_client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and "fault injection on" in page.text
    stopped = debug_client.post("/ui/fault", data={"fault": "off"})
    assert stopped.status_code == 303 and stopped.headers["Location"] == "/"
    assert debug_client.get("/api/v1/info").status_code == 200
    assert debug_client.post("/ui/fault", data={"fault": "maybe"}).status_code == 422


def test_the_readiness_toggle_is_the_same_switch(debug_client: FlaskClient) -> None:
    state = debug_client.application.extensions[LIFECYCLE_EXTENSION]
    assert debug_client.post("/ui/readiness", data={"ready": "off"}).status_code == 303
    assert state.manually_unready and debug_client.get("/readyz").status_code == 503
    assert debug_client.post("/ui/readiness", data={"ready": "on"}).status_code == 303
    assert not state.manually_unready


def test_the_batch_section_shows_with_batch_jobs_and_asks_a_token_when_access_is_checked(tmp_path: Any) -> None:
    def page(**env: str) -> str:
        response = make_app(**env).test_client().get("/", headers={"Accept": BROWSER_ACCEPT})
        assert response.status_code == 200
        return response.text

    anonymous = page()  # `make run`: loopback, no token asked
    assert 'id="batch"' in anonymous and 'id="batch-token"' not in anonymous
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret,alice\n")
    checked = page(FLASK_SVC_BATCH_AUTH="token", FLASK_SVC_BATCH_AUTH_TOKENS_FILE=str(tokens))
    assert 'id="batch-token"' in checked and "s3cret" not in checked
    off = page(FLASK_SVC_BATCH_RUNNER="off")
    assert 'id="batch"' not in off and "batch.js" not in off
