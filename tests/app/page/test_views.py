"""GET / negotiation, the page's security headers, its form's answers and the drill toggles, in process.

Rendering, the form in a real browser and the drills' buttons are in tests/browser.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from harness.models import write_iris
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


@pytest.fixture(scope="module")
def model_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    iris = write_iris(tmp_path_factory.mktemp("model") / "iris.skops")
    return make_app(
        FLASK_SVC_MODEL_PATH=str(iris),
        FLASK_SVC_MODEL_MAX_INSTANCES="4",
        FLASK_SVC_VERSION="9.8.7",
        FLASK_SVC_GIT_COMMIT="abc123",
    )


def _predict(client: FlaskClient, fields: dict[str, str]) -> Any:
    return client.post(
        "/ui/predict", headers={"Accept": BROWSER_ACCEPT}, data=fields, content_type="multipart/form-data"
    )


def test_json_clients_learn_the_build_and_the_model(model_app: Flask) -> None:
    client = model_app.test_client()
    api = client.get("/api/v1/info").get_json()
    assert (api["version"], api["commit"]) == ("9.8.7", "abc123")
    assert api["model"] == client.get("/version").get_json()["model"]
    assert set(api["model"]) == {"name", "version", "sha256"} and api["model"]["name"] == "iris"
    home = client.get("/", headers={"Accept": "application/json"}).get_json()
    assert {key: home[key] for key in ("version", "commit", "model")} == {
        key: api[key] for key in ("version", "commit", "model")
    }
    assert home["status"] == "alive"  # KServe's V1 liveness check reads it from GET /
    plain = make_app(FLASK_SVC_VERSION="1.2.3").test_client().get("/").get_json()
    assert plain["version"] == "1.2.3" and plain["model"] is None


def test_the_predict_form_shows_only_with_a_model(model_app: Flask, client: FlaskClient) -> None:
    page = model_app.test_client().get("/", headers={"Accept": BROWSER_ACCEPT}).text
    model = model_app.test_client().get("/version").get_json()["model"]
    assert 'id="predict"' in page and model["version"] in page and model["sha256"] in page
    assert [f'name="feature-{index}"' in page for index in range(5)] == [True] * 4 + [False]
    assert 'id="predict"' not in client.get("/", headers={"Accept": BROWSER_ACCEPT}).text
    refused = client.post("/ui/predict", data={"tensor": "[[1, 2, 3, 4]]"}, content_type="multipart/form-data")
    assert refused.status_code == 404


def test_the_predict_form_answers_like_the_api_and_is_measured_like_it(model_app: Flask) -> None:
    client = model_app.test_client()
    before = sample(model_app, "flask_svc_inference_duration_seconds_count", {"model": "iris", "outcome": "ok"})
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    api = client.post("/api/v1/predict", json={"instances": rows}).get_json()["predictions"]
    fields = _predict(client, {f"feature-{index}": str(value) for index, value in enumerate(rows[0])})
    assert fields.status_code == 200 and f"<td>5.1, 3.5, 1.4, 0.2</td><td>{api[0]}</td>" in fields.text
    assert 'value="5.1"' in fields.text  # the numbers stay for another try
    tensor = _predict(client, {"tensor": json.dumps(rows)})
    assert tensor.status_code == 200
    assert f"<td>6.7, 3.0, 5.2, 2.3</td><td>{api[1]}</td>" in tensor.text
    one_row = _predict(client, {"tensor": json.dumps(rows[1])})  # a single row needs no outer brackets
    assert f"<td>6.7, 3.0, 5.2, 2.3</td><td>{api[1]}</td>" in one_row.text
    after = sample(model_app, "flask_svc_inference_duration_seconds_count", {"model": "iris", "outcome": "ok"})
    assert after - before == 4


def test_bad_predict_input_gets_a_clear_4xx_page(model_app: Flask) -> None:
    client = model_app.test_client()
    full = {"feature-0": "1", "feature-1": "2", "feature-2": "3"}
    cases = [
        ({**full, "feature-3": ""}, 422, "Feature 4 is empty"),
        ({**full, "feature-3": "four"}, 422, "Feature 4 “four” is not a number"),
        ({**full, "feature-3": "nan"}, 422, "instances[0][3]: NaN and infinite values are refused"),
        ({"tensor": "[[1, 2"}, 400, "“JSON tensor” is not valid JSON"),
        ({"tensor": "[[1, 2, 3]]"}, 422, "instances[0]: holds 3 values; the model takes 4"),
        ({"tensor": '[[1, 2, 3, "x"]]'}, 422, "instances[0][3]: &#39;x&#39; is not a number"),
        ({"tensor": '"rows"'}, 422, "instances: Input should be a valid list"),
        ({"tensor": json.dumps([[1, 2, 3, 4]] * 5)}, 413, "5 instances exceed the limit of 4"),
    ]
    for fields, status, message in cases:
        response = _predict(client, fields)
        assert response.status_code == status, (response.status_code, response.text[-2000:])
        assert response.mimetype == "text/html" and message in response.text, response.text[-2000:]
    assert client.post("/ui/predict", data="[[1, 2, 3, 4]]", content_type="text/plain").status_code == 415
