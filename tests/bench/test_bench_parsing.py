"""The bench's pure logic: wrk output, ratios and goal verdicts, profiles, import times, the report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import profiling, report, run, wordcount, wrk
from harness.server import ROOT

WRK_STDOUT = """\
Running 3s test @ http://127.0.0.1:8080/livez
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.08ms    1.45ms  15.94ms   76.58%
  13078 requests in 3.00s, 2.67MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   4359.33
Transfer/sec:    911.15KB
BENCH-JSON {"requests": 13078, "duration_us": 3000000, "bytes": 2800000, "errors": {"connect": 0, "read": 1, \
"write": 0, "status": 3, "timeout": 0}, "latency_us": {"mean": 3080.5, "p50": 2860, "p90": 4870, "p99": 7790, \
"max": 15940}}
"""


# ---- wrk ----------------------------------------------------------------------------------------------------------


def test_wrk_output_is_parsed_from_the_lua_summary_line() -> None:
    result = wrk.parse_output(WRK_STDOUT)
    assert result.requests == 13078
    assert result.duration_s == 3.0
    assert result.rps == pytest.approx(4359.33, abs=0.01)
    assert result.latency_ms == {"mean": 3.0805, "p50": 2.86, "p90": 4.87, "p99": 7.79, "max": 15.94}
    assert result.errors["status"] == 3
    assert result.error_count == 4


def test_wrk_output_without_the_summary_line_is_an_error_that_shows_the_output() -> None:
    with pytest.raises(wrk.WrkError, match="Requests/sec"):
        wrk.parse_output("Running 3s test\nRequests/sec: 10\n")


def test_wrk_zero_duration_gives_zero_rate() -> None:
    assert wrk.WrkResult(0, 0.0, 0, {}, {}).rps == 0.0


def test_wrk_refuses_anything_but_the_loopback() -> None:
    with pytest.raises(wrk.WrkError, match="loopback only"):
        wrk.run("http://example.com/", wrk.LoadSettings())


def test_wrk_command_uses_the_fixed_settings_and_the_lua_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wrk.shutil, "which", lambda _name: "/usr/bin/wrk")
    cmd = wrk.command("http://127.0.0.1:1/livez", wrk.LoadSettings(connections=8, threads=1), 2.6)
    assert cmd[0] == "/usr/bin/wrk"
    assert {"--threads=1", "--connections=8", "--duration=3s", f"--script={wrk.LUA_SCRIPT}"} <= set(cmd)
    assert cmd[-1] == "http://127.0.0.1:1/livez"
    assert wrk.LUA_SCRIPT.exists()


# ---- ratios and goals ---------------------------------------------------------------------------------------------


def _round(rps: float, errors: int = 0, cpu_s: float | None = 3.0) -> dict[str, Any]:
    """A 3 s round; by default the server used one CPU throughout, so its req/CPU-s equals its req/s."""
    return {
        "rps": rps,
        "requests": int(rps * 3),
        "cpu_s": cpu_s,
        "p50_ms": 1.0,
        "p90_ms": 2.0,
        "p99_ms": 3.0,
        "errors": errors,
    }


def _run(workers: int, target: str, endpoint: str, *rps: float) -> dict[str, Any]:
    return {"workers": workers, "target": target, "endpoint": endpoint, "rounds": [_round(r) for r in rps]}


def _results() -> dict[str, Any]:
    return {
        "date": "2030-01-02",
        "runs": [
            _run(1, "svc-on", "livez", 900, 950),
            _run(1, "svc-default", "livez", 940, 1000),
            _run(1, "svc-off", "livez", 1100),
            _run(1, "bare", "livez", 1000, 1200),
            _run(1, "fastapi", "livez", 4000),
            _run(1, "nginx", "livez", 50000),
            _run(1, "svc-default", "readyz", 800, 900, 1000),
            _run(1, "bare", "readyz", 1000),
            _run(1, "svc-on", "analyze-1k", 450),
            _run(1, "svc-sampled", "analyze-1k", 420),
            _run(1, "svc-default", "analyze-1k", 480),
            _run(1, "svc-off", "analyze-1k", 500),
            _run(1, "bare", "analyze-1k", 800),
            _run(1, "fastapi", "analyze-1k", 400),
            _run(1, "svc-on", "analyze-100k", 95),
            _run(1, "svc-default", "analyze-100k", 100),
            _run(1, "svc-off", "analyze-100k", 100),
            _run(1, "fastapi", "analyze-100k", 125),
            _run(2, "svc-default", "livez", 1800),
            _run(2, "bare", "livez", 2000),
        ],
        "memory": [
            {"target": "svc-default", "workers": 1, "idle_rss_mb": 58.0, "idle_pss_mb": 40.0, "loaded_rss_mb": 61.0},
        ],
        "startup": {"svc": [0.6, 0.4, 0.7], "bare": [0.2]},
        "wordcount": {
            "passes": 3,
            "ascii": {
                "bytes": 1_000_000,
                "measures": [
                    {"name": "wc -w (LC_ALL=C)", "mb_per_s": 400.0, "words": 10, "seconds": 1, "note": ""},
                    {
                        "name": "flask-svc pipeline, 16 KiB chunks",
                        "mb_per_s": 40.0,
                        "words": 10,
                        "seconds": 1,
                        "note": "",
                    },
                ],
            },
        },
    }


def test_requests_per_cpu_second() -> None:
    assert report.per_cpu_second(3000, 1.5) == 2000
    assert report.per_cpu_second(3000, 0.0) is None  # under one clock tick: nothing to divide by
    assert report.per_cpu_second(3000, None) is None


def test_best_round_is_the_fastest_clean_one() -> None:
    rounds = [_round(100), _round(300, errors=5), _round(200)]
    assert report.best_round(rounds) == rounds[2]
    assert report.best_round([_round(300, errors=5)])["rps"] == 300  # all dirty: still report, errors show
    assert report.best_round([]) is None


def test_ratio_of_missing_or_zero_is_none() -> None:
    assert report.ratio(1.0, 2.0) == 0.5
    assert report.ratio(None, 2.0) is None
    assert report.ratio(1.0, 0.0) is None
    assert report.ratio(1.0, None) is None


def test_ratios_use_the_best_round_of_each_side() -> None:
    rows = {(r.workers, r.endpoint): r for r in report.ratios(_results()["runs"])}
    livez = rows[(1, "livez")]
    assert livez.default_vs_bare == pytest.approx(1000 / 1200)
    assert livez.off_vs_bare == pytest.approx(1100 / 1200)
    assert livez.default_vs_fastapi == pytest.approx(1000 / 4000)
    assert livez.off_vs_fastapi == pytest.approx(1100 / 4000)
    assert livez.on_vs_off == pytest.approx(950 / 1100)
    assert livez.default_vs_off == pytest.approx(1000 / 1100)
    assert rows[(1, "analyze-100k")].default_vs_bare is None  # no bare Flask run for it
    assert rows[(2, "livez")].default_vs_bare == pytest.approx(0.9)
    assert rows[(2, "livez")].on_vs_off is None
    assert list(rows) == [(1, "livez"), (1, "readyz"), (1, "analyze-1k"), (1, "analyze-100k"), (2, "livez")]


def test_per_cpu_second_is_the_median_round_and_skips_rounds_without_cpu_time() -> None:
    rounds = [_round(100, cpu_s=0.5), _round(300, cpu_s=1.0), _round(200, cpu_s=2.0), _round(900, cpu_s=None)]
    assert report.per_cpu_values(rounds) == [600, 900, 300]
    assert report.median_per_cpu(rounds) == 600
    assert report.median_per_cpu([_round(100, errors=2, cpu_s=1.0), _round(50, cpu_s=1.0)]) == 150  # clean only
    assert report.median_per_cpu([_round(100, cpu_s=None)]) is None  # a run recorded before CPU time was
    assert report.median_per_cpu([]) is None


def test_ratios_on_cpu_seconds_use_the_median_round_of_each_side() -> None:
    rows = {(r.workers, r.endpoint): r for r in report.ratios(_results()["runs"], report.median_per_cpu)}
    assert rows[(1, "livez")].default_vs_bare == pytest.approx(970 / 1100)
    assert rows[(1, "readyz")].default_vs_bare == pytest.approx(0.9)
    assert rows[(1, "analyze-1k")].on_vs_default == pytest.approx(450 / 480)
    assert rows[(1, "analyze-1k")].sampled_vs_default == pytest.approx(420 / 480)


def test_goal_verdicts() -> None:
    verdicts = {goal.name.split(":")[0].split(" (")[0]: goal for goal in report.goals(_results())}
    defaults = verdicts["metrics + access log"]
    assert (defaults.value, defaults.met) == ("4 %", True)  # the worse of 1 - 480/500 and 1 - 100/100
    assert "analyze-1k 1w 4 % (req/s 4 %)" in defaults.detail
    sampled = verdicts["tracing at 10 %"]
    assert (sampled.value, sampled.met) == ("12 %", False)  # 1 - 420/480; no sampled run at 100 KB
    always = verdicts["tracing at 100 %"]
    assert (always.value, always.met, always.target) == ("6 %", True, "≤ 30 %")  # 1 - 450/480 beats 1 - 95/100
    readyz = verdicts["GET /readyz vs bare Flask"]
    assert (readyz.value, readyz.met) == ("0.90\u00d7", True)  # the median round 900, not the best 1000
    assert "req/s 1.00\u00d7" in readyz.detail
    livez = verdicts["/livez vs bare Flask"]
    assert (livez.value, livez.met) == ("0.88\u00d7", False)  # 1w: medians 970 / 1100; 2w 0.90
    fastapi = verdicts["analyze per core vs FastAPI"]
    assert (fastapi.value, fastapi.met) == ("0.80\u00d7", False)  # 1k is 1.20, 100k 0.80: the lowest counts
    start = verdicts["start → /readyz 200"]
    assert (start.value, start.met) == ("0.60 s", False)
    rss = verdicts["idle RSS, whole process tree"]
    assert (rss.value, rss.met) == ("58 MB", True)
    words = verdicts["word count vs `wc -w`"]
    assert (words.value, words.met) == ("0.10\u00d7", False)
    assert words.verdict == "**missed**"


def test_round_spread_is_the_median_and_worst_relative_gap() -> None:
    runs = [_run(1, "a", "livez", 100, 50), _run(1, "b", "livez", 100, 90), _run(1, "c", "livez", 100, 80, 100)]
    runs.append(_run(1, "d", "livez", 100))  # one round: no spread to speak of
    assert report.round_spread(runs) == (pytest.approx(0.2), pytest.approx(0.5))
    assert report.round_spread([]) is None
    # The same rounds on req/CPU-s: each used the CPU in proportion to its requests, so nothing moved.
    for scenario in runs:
        for one in scenario["rounds"]:
            one["cpu_s"] = one["rps"] / 50
    assert report.round_spread(runs, report.per_cpu_values) == (0, 0)


def test_goals_without_data_are_not_measured() -> None:
    assert {goal.verdict for goal in report.goals({})} == {"not measured"}


def test_markdown_report_has_every_section_and_survives_missing_parts() -> None:
    text = report.render("report", _results())
    for heading in ("## Goals", "## Throughput and latency", "### Ratios", "## Start → ready", "## Memory", "## Image"):
        assert heading in text
    assert "| bare Flask | GET /livez | 1,200 | 1,000\u20131,200 | 1,100 | 1,000\u20131,200 | 1.00 | 3.00 | 0 |" in text
    x = "\u00d7"
    # req/s (best rounds): defaults/bare, off/bare, defaults/FastAPI, off/FastAPI, defaults/off, sampled, on/defaults,
    # on/off
    assert f"| 1 | GET /livez | 0.83{x} | 0.92{x} | 0.25{x} | 0.28{x} | 0.91{x} | n/a | 0.95{x} | 0.86{x} |" in text
    assert f"| 1 | GET /livez | 0.88{x} | 1.00{x} | 0.24{x} | 0.28{x} | 0.88{x} | n/a | 0.95{x} | 0.84{x} |" in text
    assert "req/s moved by 11% (median over scenarios; worst 20%), req/CPU-s by 11% (worst 20%)" in text
    assert "n/a" in report.render("report", {})
    latest = report.render("latest", _results())
    assert latest.startswith("Latest run: 2030-01-02")
    assert "(2030-01-02.png)" in latest


def test_slow_client_results_render_as_their_own_section() -> None:
    rows = [
        {
            "label": "flask-svc",
            "requests": 20,
            "within_1s": 20,
            "within_2s": 20,
            "median_ms": 1.2,
            "max_ms": 8.0,
            "slow_closed": 8,
            "slow_closed_after_s": 5.64,
        },
        {
            "label": "stock",
            "requests": 20,
            "within_1s": 0,
            "within_2s": 0,
            "median_ms": None,
            "max_ms": None,
            "slow_closed": 0,
            "slow_closed_after_s": None,
        },
    ]
    text = report.render("report", {"slow_clients": {"idle": 300, "slow": 8, "watch_s": 20.0, "rows": rows}})
    assert "## Idle and slow clients" in text
    assert "| flask-svc | 20/20 | 20/20 | 1 ms | 8 ms | 5.6 s (8 of 8) |" in text
    assert "| stock | 0/20 | 0/20 | none | none | never within 20 s |" in text
    assert "## Idle and slow clients" not in report.render("report", {})


def test_batch_results_render_beside_the_synchronous_endpoint() -> None:
    mib = 1024 * 1024
    rows = [
        {
            "what": "POST /api/v1/wordcount, 8 MiB",
            "bytes": 8 * mib,
            "seconds": 0.5,
            "mib_per_s": 16.0,
            "mib_per_cpu_s": 20.0,
        },
        {"what": "jobs, P=1", "bytes": 64 * mib, "seconds": 8.0, "mib_per_s": 8.0, "mib_per_cpu_s": 10.0},
        {"what": "jobs, P=2", "bytes": 64 * mib, "seconds": 5.0, "mib_per_s": 12.8, "mib_per_cpu_s": 9.0},
    ]
    text = report.render("report", {"batch": {"passes": 3, "rows": rows}})
    assert "## Batch analysis" in text
    # MiB/s and MiB per CPU-second against the synchronous endpoint, and P=2's MiB/s against P=1's.
    assert "| jobs, P=1 | 64 | 8.00 | 8.0 | 10.0 | 0.50× | 1.00× | 0.50× |" in text
    assert "| jobs, P=2 | 64 | 5.00 | 12.8 | 9.0 | 0.80× | 1.60× | 0.45× |" in text
    assert "## Batch analysis" not in report.render("report", {})


# ---- profiles -----------------------------------------------------------------------------------------------------

SITE = "/venv/lib/python3.11/site-packages"
STDLIB = "/usr/lib/python3.11"
COLLAPSED = f"""\
run (/app/x.py:1);handle ({SITE}/gunicorn/workers/gthread.py:553);GunicornLogger.access ({ROOT}/service/logs.py:125);\
log ({STDLIB}/logging/__init__.py:1559);emit ({STDLIB}/logging/__init__.py:1110) 30
run (/app/x.py:1);handle ({SITE}/gunicorn/workers/gthread.py:553);_words ({ROOT}/service/analysis/tokenizer.py:60) 50
_bootstrap ({STDLIB}/threading.py:1002);wait ({STDLIB}/threading.py:320) 15
junk (\x01\x02:7) 5
not a stack line
"""


def test_frames_are_parsed_and_attributed_to_their_package() -> None:
    frame = profiling.parse_frame(f"Tokenizer._words ({ROOT}/service/analysis/tokenizer.py:60)")
    assert frame == profiling.Frame("Tokenizer._words", f"{ROOT}/service/analysis/tokenizer.py", 60)
    assert frame.component == "service.analysis"
    assert frame.short == "Tokenizer._words (service/analysis/tokenizer.py:60)"
    assert profiling.parse_frame(f"f ({SITE}/opentelemetry/sdk/trace/__init__.py:9)").component == "opentelemetry"
    assert profiling.parse_frame(f"f ({SITE}/six.py:9)").component == "six"
    assert profiling.parse_frame(f"f ({ROOT}/service/logs.py:1)").component == "service.logs"
    assert profiling.parse_frame(f"f ({STDLIB}/json/encoder.py:2)").component is None
    assert profiling.parse_frame("junk (\x01:7)").path == ""  # garbage from a non-blocking sample


def test_collapsed_stacks_summarise_by_owner_and_line() -> None:
    stacks = profiling.parse_collapsed(COLLAPSED)
    assert [count for _frames, count in stacks] == [30, 50, 15, 5]
    summary = profiling.summarise("t", stacks)
    assert summary.samples == 100
    shares = dict(summary.components)
    assert shares["service.analysis"] == 0.5
    assert shares["service.logs"] == 0.3  # logging's time belongs to whoever logged
    assert shares["stdlib threading"] == 0.15
    assert shares["other"] == 0.05
    assert sum(shares.values()) == pytest.approx(1.0)
    hottest, share, _source = summary.lines[0]
    assert (hottest, share) == ("_words (service/analysis/tokenizer.py:60)", 0.5)
    watched = dict(summary.watched)
    assert watched["access log line (service.logs GunicornLogger.access)"] == 0.3
    assert watched["the analysis pipeline (service.analysis)"] == 0.5
    assert "response building (jsonify)" not in watched  # absent costs are not listed


def test_hottest_lines_carry_their_source(tmp_path: Path) -> None:
    source = tmp_path / "hot.py"
    source.write_text("x = 1\nwords = pattern.findall(text)\n")
    summary = profiling.summarise("t", profiling.parse_collapsed(f"main ({source}:1);hot ({source}:2) 7\n"))
    assert summary.lines == [(f"hot ({source}:2)", 1.0, "words = pattern.findall(text)")]
    assert summary.components == [("stdlib hot", 1.0)]  # outside packages and the project: named by its module


def test_empty_profile_has_no_shares() -> None:
    assert profiling.summarise("t", []).components == []


def test_importtime_is_parsed_and_summed_by_package() -> None:
    stderr = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |   _io
import time:      2000 |       2500 |     flask.json
import time:      3000 |       5500 |   flask
import time:       500 |       6000 | service
some other line
"""
    rows = profiling.parse_importtime(stderr)
    assert rows[0] == ("_io", 100, 100, 1)
    assert rows[1] == ("flask.json", 2000, 2500, 2)
    assert rows[-1] == ("service", 500, 6000, 0)
    assert profiling.import_cost_by_package(rows) == [("flask", 5.0), ("service", 0.5), ("_io", 0.1)]


# ---- word count ------------------------------------------------------------------------------------------------------


def test_wordcount_measures_the_pipeline_and_renders(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_bytes(b"one two, two three. three three\n")
    (measure,) = wordcount.measure(path, passes=1, python_only=True)
    assert measure.words == 6
    assert measure.mb_per_s > 0
    assert "Counter" in measure.note
    assert "flask-svc pipeline" in wordcount.render([measure], 0.1)


@pytest.mark.parametrize(
    ("usage", "mb"),
    [
        ("45.5MiB / 23.54GiB", 45.5 * 2**20 / 1e6),
        ("1.5GiB / 2GiB", 1.5 * 2**30 / 1e6),
        ("800kB / 1GB", 0.8),
        ("--", None),
    ],
)
def test_docker_stats_memory_is_parsed_to_mb(usage: str, mb: float | None) -> None:
    assert run.parse_docker_memory(usage) == (pytest.approx(mb) if mb is not None else None)


def test_the_plots_imports_need_nothing_the_bench_venv_lacks() -> None:
    """bench.plot runs in the bench venv (matplotlib, no psutil or requests): bench.report must import without them."""
    blocked = "import sys; sys.modules.update(psutil=None, requests=None); import bench.report"
    subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, check=True, timeout=60)
