"""bench.model's flask-svc half end to end in a few seconds (MLServer needs `make setup-bench-full`, so the full
comparison runs only in `make bench`): the V2 bodies wrk posts are answered 200, and the report says what it found."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import requests

from bench import model, report, wrk
from harness.models import check_protocol, write_iris

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make setup-bench)")


@pytest.mark.parametrize("instances", model.BATCHES)
def test_wrk_posts_v2_bodies_flask_svc_answers(tmp_path: Path, instances: int) -> None:
    body = model.v2_body(instances)
    check_protocol(body, "inference_request")
    body_file = tmp_path / "body.json"
    body_file.write_text(json.dumps(body))
    with model.flask_svc(write_iris(tmp_path / "iris.skops")) as server:
        url = server.url
        answer = requests.post(f"{url}/v2/models/{model.MODEL}/infer", json=body, timeout=10).json()
        settings = wrk.LoadSettings(duration_s=1, warmup_s=0, connections=2, threads=1)
        result = wrk.run(f"{url}/v2/models/{model.MODEL}/infer", settings, body_file, None, "application/json")
    assert answer["outputs"][0]["shape"] == [instances]
    assert result.requests > 0 and result.error_count == 0, result.errors  # a 4xx would count as a status error


def test_wrk_posts_binary_bodies_flask_svc_answers(tmp_path: Path) -> None:
    body, header = model.v2_binary_body(64)
    body_file = tmp_path / "body.bin"
    body_file.write_bytes(body)
    with model.flask_svc(write_iris(tmp_path / "iris.skops")) as server:
        url = server.url
        settings = wrk.LoadSettings(duration_s=1, warmup_s=0, connections=2, threads=1)
        result = wrk.run(f"{url}/v2/models/{model.MODEL}/infer", settings, body_file, None, "application/json", header)
    assert result.requests > 0 and result.error_count == 0, result.errors


def _row(server: str, form: str, n: int, rps: float, peak: float | None, per_cpu: float) -> dict[str, object]:
    return {
        "server": server, "form": form, "instances": n, "rps": rps, "instances_per_s": rps * n,
        "per_cpu_s": per_cpu, "p50_ms": 1.0, "p99_ms": 2.0, "peak_mib": peak,
    }  # fmt: skip


def test_report_states_the_goal_and_the_memory() -> None:
    rows = [
        _row("flask-svc", "binary", 64, 900.0, 181.0, 1100.0),
        _row("flask-svc", "json", 64, 700.0, 183.0, 800.0),
        _row("mlserver", "json", 64, 1000.0, None, 1000.0),
        _row("flask-svc", "json", 1, 1200.0, 180.0, 1300.0),
    ]
    settings = {"connections": 16, "threads": 2, "rounds": 3, "duration_s": 3.0}
    results = {"settings": settings, "servers": model.SERVERS, "rows": rows, "goal": model.goal(rows)}
    text = report.render("model", results)
    # Judged per CPU-second (1100 / 1000), requests per second beside it.
    assert "**met** (ratio 1.1; requests per second: 0.9)" in text
    assert "| MLServer (1 process) | json | 64 | 1000 | 1000 | 64000 | 1.00 | 2.00 |  |" in text
    assert "| binary | 64 | 900 | 1100 | 57600 | 1.00 | 2.00 | 181 |" in text
    cheaper = [
        _row("flask-svc", "binary", 64, 1100.0, 181.0, 900.0),
        _row("mlserver", "json", 64, 1000.0, None, 1000.0),
    ]
    assert model.goal(cheaper) == {"met": False, "ratio": 0.9, "rps_ratio": 1.1}
    alone = {**results, "rows": rows[:2], "goal": model.goal(rows[:2])}
    assert "not measured (no MLServer)" in report.render("model", alone)


def test_measure_counts_the_server_cpu_of_every_run(tmp_path: Path) -> None:
    """flask-svc alone, one short round per size and form: each row carries its requests per CPU-second, from the
    CPU its process tree spent in that round (the goal is judged on it)."""
    settings = wrk.LoadSettings(duration_s=1, warmup_s=0.5, connections=2, threads=1)
    results = model.measure(write_iris(tmp_path / "iris.skops"), settings, 1, log=lambda _: None, mlserver_too=False)
    assert {(row["form"], row["instances"]) for row in results["rows"]} == {
        (form, batch) for form in model.FORMS for batch in model.BATCHES
    }
    for row in results["rows"]:
        (one,) = row["rounds"]
        assert one["requests"] > 0 and one["cpu_s"] > 0, row
        assert row["per_cpu_s"] == round(one["requests"] / one["cpu_s"], 1)
    assert results["goal"] is None


def _rounds(*pairs: tuple[int, float]) -> list[dict[str, float]]:
    return [{"requests": requests, "cpu_s": cpu_s, "rps": requests / 3} for requests, cpu_s in pairs]


def test_goal_is_the_median_of_the_rounds_own_ratios() -> None:
    """Round 2 ran while the machine was busier for both servers: its ratio still holds, and the median of the
    per-round ratios (1.1) judges the goal where the ratio of the two median rounds (1200 / 1250 = 0.96) would not."""
    ours = _row("flask-svc", "binary", 64, 1000.0, 181.0, 1200.0)
    theirs = _row("mlserver", "json", 64, 1000.0, None, 1250.0)
    ours["rounds"] = _rounds((3300, 3.0), (1650, 3.0), (3600, 3.0))  # 1100, 550, 1200 per CPU-s
    theirs["rounds"] = _rounds((3000, 3.0), (1500, 3.0), (3750, 3.0))  # 1000, 500, 1250 per CPU-s
    judged = model.goal([ours, theirs])
    assert judged == {"met": True, "ratio": 1.1, "rps_ratio": 1.1, "round_ratios": [1.1, 1.1, 0.96]}
    settings = {"connections": 16, "threads": 2, "rounds": 3, "duration_s": 3.0}
    text = report.render(
        "model", {"settings": settings, "servers": model.SERVERS, "rows": [ours, theirs], "goal": judged}
    )
    assert "**met** (ratio 1.1; requests per second: 1.1)" in text
    assert "the median of the rounds' own ratios (1.1, 1.1, 0.96)" in text


def test_rounds_interleave_the_forms_size_by_size(tmp_path: Path) -> None:
    """Each round runs every server and form of `round_order` one after the other, the goal's two sides adjacent:
    flask-svc's forms here (MLServer needs its venv), two rounds per size."""
    assert model.round_order() == [("flask-svc", "json"), ("flask-svc", "binary"), ("mlserver", "json")]
    lines: list[str] = []
    settings = wrk.LoadSettings(duration_s=0.5, warmup_s=0.2, connections=2, threads=1)
    results = model.measure(write_iris(tmp_path / "iris.skops"), settings, 2, log=lines.append, mlserver_too=False)
    ran = [re.fullmatch(r"flask-svc +(\d+) instances (\w+) *, round (\d+):.*", line).groups() for line in lines]  # type: ignore[union-attr]
    assert ran == [
        (str(batch), form, str(round_)) for batch in model.BATCHES for round_ in (1, 2) for form in model.FORMS
    ]
    assert all(len(row["rounds"]) == 2 and row["peak_mib"] > 0 for row in results["rows"])
