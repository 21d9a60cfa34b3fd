"""Issue 16 in a real browser: the home page, its form, the drill buttons and /docs, with a strict CSP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from harness.models import write_iris
from harness.server import Server, running_server
from tests.browser.conftest import open_page

TEXT = "The cat sat on the mat. The cat saw the dog, and the dog saw the cat."


def test_home_page_analyses_pasted_text(browser: Browser, page_server: Server, artifacts: Path) -> None:
    watched = open_page(browser)
    page = watched.page
    response = page.goto(page_server.url + "/")
    assert response is not None and response.ok
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("h1")).to_contain_text("flask-svc")
    expect(page.locator("#readiness")).to_contain_text("ready: ok")
    page.get_by_label("Text", exact=True).fill(TEXT)
    page.get_by_label("Stop words", exact=True).select_option("en")
    page.get_by_label("Top words", exact=True).fill("3")
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator("#result")).to_be_visible()
    rows = page.locator("#top-words tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("cat")
    expect(rows.first).to_contain_text("3")
    expect(page.get_by_label("Text", exact=True)).to_have_value(TEXT)  # the text stays for another try
    page.screenshot(path=str(artifacts / "home.png"), full_page=True)
    watched.assert_clean()


def test_bad_form_input_is_a_clear_4xx(browser: Browser, page_server: Server, artifacts: Path) -> None:
    watched = open_page(browser)
    page = watched.page
    page.goto(page_server.url + "/")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Analyse").click()
    response = navigation.value
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("Paste some text or choose a file")
    page.screenshot(path=str(artifacts / "home-empty-form.png"), full_page=True)
    # Chrome logs the 400 document itself as a failed resource load; nothing else may appear.
    assert watched.problems == [
        "console: Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    ]
    assert not watched.csp_violations()


def test_upload_a_file_with_javascript_off(browser: Browser, page_server: Server, tmp_path: Path) -> None:
    sample = tmp_path / "sample.txt"
    sample.write_text("alpha beta beta gamma gamma gamma\n", encoding="utf-8")
    watched = open_page(browser, javascript=False)
    page = watched.page
    page.goto(page_server.url + "/")
    expect(page.locator("#pod")).not_to_be_empty()
    page.get_by_label("…or a text file (UTF-8)").set_input_files(str(sample))
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator("#tokens")).to_have_text("6")
    expect(page.locator("#top-words tbody tr").first).to_contain_text("gamma")
    assert not watched.problems, watched.problems


def test_readable_at_360_px(browser: Browser, page_server: Server, artifacts: Path) -> None:
    watched = open_page(browser, width=360, height=740)
    page = watched.page
    page.goto(page_server.url + "/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(artifacts / "home-360.png"), full_page=True)
    watched.assert_clean()


def test_drill_buttons_switch_readiness_and_faults(browser: Browser, page_server: Server) -> None:
    watched = open_page(browser)
    page = watched.page
    page.goto(page_server.url + "/")
    try:
        page.get_by_role("button", name="Readiness off").click()
        expect(page.locator("#readiness")).to_contain_text("not ready")
        assert requests.get(page_server.url + "/readyz", timeout=5).status_code == 503
        page.get_by_role("button", name="Readiness on").click()
        expect(page.locator("#readiness")).to_contain_text("ready: ok")
        assert requests.get(page_server.url + "/readyz", timeout=5).status_code == 200

        page.get_by_role("button", name="Fault on").click()
        expect(page.locator("#fault")).to_be_visible()
        assert requests.get(page_server.url + "/api/v1/info", timeout=5).status_code == 500
        page.get_by_role("button", name="Fault off").click()
        expect(page.locator("#fault")).to_have_count(0)
        assert requests.get(page_server.url + "/api/v1/info", timeout=5).status_code == 200
    finally:
        requests.post(page_server.url + "/readyz/enable", timeout=5)
        requests.post(page_server.url + "/fault/disable", timeout=5)
    watched.assert_clean()


def test_docs_run_a_call(browser: Browser, page_server: Server, artifacts: Path) -> None:
    watched = open_page(browser, height=1200)
    page = watched.page
    response = page.goto(page_server.url + "/docs")
    assert response is not None and response.ok
    operation = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="/version"))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    live = operation.locator(".live-responses-table tbody .response-col_status").first
    expect(live).to_have_text("200")
    expect(operation.locator(".live-responses-table .microlight").first).to_contain_text('"commit"')
    page.screenshot(path=str(artifacts / "docs.png"), full_page=False)
    watched.assert_clean()


def _run_batch_job(page: Page, sample: Path, token: str | None = None) -> None:
    page.get_by_label("A text file (UTF-8) for a batch job of separate stages").set_input_files(str(sample))
    if token is not None:
        page.get_by_label("Bearer token").fill(token)
    page.get_by_role("button", name="Start the job").click()


def test_batch_section_runs_a_job_through_its_states(
    browser: Browser, page_server: Server, artifacts: Path, tmp_path: Path
) -> None:
    sample = tmp_path / "sample.txt"
    sample.write_text("alpha beta beta gamma gamma gamma\n" * 100, encoding="utf-8")
    watched = open_page(browser, height=1400)
    page = watched.page
    page.goto(page_server.url + "/")
    expect(page.get_by_label("Bearer token")).to_have_count(0)  # make run: loopback, anonymous
    _run_batch_job(page, sample)
    expect(page.locator("#batch-state")).to_have_text("succeeded", timeout=60_000)
    states = page.locator("#batch-states li").all_text_contents()
    # The job's own order, however much of it the page saw: the POST answers with the job's state at that moment,
    # and a small job can be counting by then (the stage host starts its stages at once).
    order = ["queued", "tokenizing", "counting", "succeeded"]
    assert states[-1] == "succeeded" and states == sorted(states, key=order.index), states
    assert len(states) == len(set(states))  # each state once, in the order seen
    expect(page.locator("#batch-tokens")).to_have_text("600")
    expect(page.locator("#batch-progress")).to_have_text("1 of 1 (3400 bytes)")  # one shard, every byte
    rows = page.locator("#batch-top-words tbody tr")
    expect(rows.first).to_contain_text("gamma")
    expect(rows.first).to_contain_text("300")
    job_id = page.locator("#batch-id").text_content()
    listed = requests.get(page_server.url + "/api/v1/jobs", timeout=5).json()["jobs"]
    assert job_id in [job["id"] for job in listed]  # a real job of the API
    page.screenshot(path=str(artifacts / "home-batch.png"), full_page=True)
    watched.assert_clean()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tokens = tmp_path_factory.mktemp("tokens") / "tokens"
    tokens.write_text("page-t0ken,alice\n", encoding="utf-8")
    env = {"FLASK_SVC_BATCH_AUTH": "token", "FLASK_SVC_BATCH_AUTH_TOKENS_FILE": str(tokens)}
    with running_server(env) as server:
        yield server


def test_batch_section_sends_the_token_typed(browser: Browser, token_server: Server, tmp_path: Path) -> None:
    sample = tmp_path / "sample.txt"
    sample.write_text("one two two\n", encoding="utf-8")
    watched = open_page(browser, height=1400)
    page = watched.page
    page.goto(token_server.url + "/")
    _run_batch_job(page, sample)  # no token: the API's 401, shown
    expect(page.locator("#batch-error")).to_contain_text("401")
    _run_batch_job(page, sample, token="page-t0ken")
    expect(page.locator("#batch-state")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("#batch-top-words tbody tr").first).to_contain_text("two")
    # Chrome logs the refused request itself; nothing else may appear.
    assert watched.problems == [
        "console: Failed to load resource: the server responded with a status of 401 (UNAUTHORIZED)"
    ]
    assert not watched.csp_violations()


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    iris = write_iris(tmp_path_factory.mktemp("model") / "iris.skops")
    with running_server({"FLASK_SVC_MODEL_PATH": str(iris)}) as server:
        yield server


def test_predict_form_answers_with_the_model_named(browser: Browser, model_server: Server, artifacts: Path) -> None:
    model = requests.get(model_server.url + "/api/v1/info", timeout=5).json()["model"]
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    api = requests.post(model_server.url + "/api/v1/predict", json={"instances": rows}, timeout=5).json()
    watched = open_page(browser, height=1400)
    page = watched.page
    page.goto(model_server.url + "/")
    expect(page.locator("#model-name")).to_have_text(model["name"])
    expect(page.locator("#model-version")).to_have_text(model["version"])
    for index, value in enumerate(rows[0]):
        page.get_by_label(f"Feature {index + 1}", exact=True).fill(str(value))
    page.get_by_role("button", name="Predict").click()
    answers = page.locator("#predictions tbody tr td:nth-child(2)")
    expect(answers).to_have_text([str(api["predictions"][0])])
    expect(page.locator("#prediction h3")).to_contain_text(f"{model['name']} {model['version']}")
    page.get_by_label("…or a JSON tensor").fill(json.dumps(rows))
    page.get_by_role("button", name="Predict").click()
    expect(answers).to_have_text([str(answer) for answer in api["predictions"]])
    page.screenshot(path=str(artifacts / "home-predict.png"), full_page=True)
    watched.assert_clean()


def test_predict_form_shows_the_reason_with_javascript_off(browser: Browser, model_server: Server) -> None:
    watched = open_page(browser, javascript=False, width=360, height=1400)
    page = watched.page
    page.goto(model_server.url + "/")
    page.get_by_label("…or a JSON tensor").fill("[[1, 2, 3]]")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Predict").click()
    response = navigation.value
    assert response is not None and response.status == 422
    expect(page.locator("#predict-error")).to_contain_text("instances[0]: holds 3 values; the model takes 4")
    expect(page.get_by_label("…or a JSON tensor")).to_have_value("[[1, 2, 3]]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert watched.problems == [
        "console: Failed to load resource: the server responded with a status of 422 (UNPROCESSABLE ENTITY)"
    ]
