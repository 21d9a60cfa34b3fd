"""The bench harness end to end, in a few seconds: flask-svc /livez under wrk for 2 s, then the report files.

Keeps `make bench` from rotting between the (manual) full runs. Needs wrk only — `make setup` installs it; the
bench venv, nginx and py-spy are not needed here. Nothing is asserted about speed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import run, wrk

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make setup-bench)")


def test_smoke_run_produces_a_parsed_result_and_a_report(tmp_path: Path) -> None:
    plan = run.Plan(
        settings=wrk.LoadSettings(duration_s=2, warmup_s=0, connections=4, threads=1),
        workers=(1,),
        targets=("svc-off",),
        endpoints=("livez",),
        rounds=1,
        starts=0,
        profiles=False,
        extras=False,  # the slow-client and batch phases take a minute; their rendering has unit tests
        log=lambda _message: None,
    )
    results = run.execute(plan, tmp_path, wordcount_too=False, container_too=False)

    (entry,) = results["runs"]
    assert (entry["workers"], entry["target"], entry["endpoint"]) == (1, "svc-off", "livez")
    (measured,) = entry["rounds"]
    assert measured["requests"] > 0
    assert measured["errors"] == 0
    assert 0 < measured["p50_ms"] <= measured["p99_ms"]
    (memory,) = results["memory"]
    assert memory["idle_rss_mb"] > 0
    assert memory["loaded_rss_mb"] >= memory["idle_pss_mb"] > 0

    markdown = run.write(results, tmp_path / "results", plot=False)
    text = markdown.read_text()
    assert "| flask-svc, all off | GET /livez |" in text
    assert "not measured" in text  # the goals this smoke run cannot judge say so rather than guess
    assert (tmp_path / "results" / "latest.md").read_text().startswith("Latest run:")
