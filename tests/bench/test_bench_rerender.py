"""The committed results re-render byte for byte: the report is a function of the results JSON alone, so a change to
the bench's code that alters a committed report (bench/results/<date>.md, latest.md) changes what it says."""

from __future__ import annotations

import json

import pytest

from bench import report
from harness.server import ROOT

RESULTS = ROOT / "bench" / "results"
# The runs since the report took its present shape (2026-11-21's was written by an earlier layout).
DATES = ("2026-11-30", "2026-12-07")


@pytest.mark.parametrize("date", DATES)
def test_a_committed_run_renders_to_its_committed_report(date: str) -> None:
    results = json.loads((RESULTS / f"{date}.json").read_text())
    assert report.render("report", results) == (RESULTS / f"{date}.md").read_text()


def test_the_latest_summary_renders_from_the_last_committed_run() -> None:
    last = max(path.stem for path in RESULTS.glob("20*.json"))
    results = json.loads((RESULTS / f"{last}.json").read_text())
    assert report.render("latest", results) == (RESULTS / "latest.md").read_text()
