"""The chart's generated copy of the batch facts (charts/flask-svc/templates/_batch_facts.tpl) is current."""

from __future__ import annotations

from service.batch.chartfile import CHART_FILE, render


def test_the_chart_file_is_generated_from_the_exit_codes() -> None:
    assert CHART_FILE.read_text() == render(), "stale: run `python -m service.batch.chartfile`"
