"""From a run's measurements (a JSON-able dict, see bench/run.py) to ratios, goal verdicts and Markdown.

Pure functions over plain data, so they are unit-tested without running a server.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

TARGET_LABELS = {
    "svc-on": "flask-svc, all on",
    "svc-default": "flask-svc, defaults",
    "svc-sampled": "flask-svc, tracing 10 %",
    "svc-off": "flask-svc, all off",
    "bare": "bare Flask",
    "fastapi": "FastAPI/uvicorn",
    "nginx": "nginx static",
}
ENDPOINT_LABELS = {
    "livez": "GET /livez",
    "readyz": "GET /readyz",
    "analyze-1k": "POST analyze 1 KB",
    "analyze-100k": "POST analyze 100 KB",
}
ANALYZE = ("analyze-1k", "analyze-100k")
TIMES = "\u00d7"  # the multiplication sign, spelled out so linters do not take it for an x
DASH = "\u2013"


def per_cpu_second(requests: int, cpu_s: float | None) -> float | None:
    """Requests per CPU-second; None when no CPU was measured (a window shorter than one clock tick)."""
    if not cpu_s or cpu_s <= 0:
        return None
    return requests / cpu_s


def best_round(rounds: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The round with the most requests per second. On a shared machine other load only ever slows a run down, so
    the best of a few interleaved rounds is the least disturbed one."""
    clean = [r for r in rounds if not r.get("errors")]
    return max(clean or rounds, key=lambda r: r["rps"], default=None)


def best_rps(rounds: Sequence[Mapping[str, Any]]) -> float | None:
    best = best_round(rounds)
    return float(best["rps"]) if best else None


def per_cpu_values(rounds: Sequence[Mapping[str, Any]]) -> list[float]:
    """Each clean round's requests per CPU-second of the server's process tree (none for runs recorded before CPU
    time was)."""
    clean = [r for r in rounds if not r.get("errors")] or list(rounds)
    return [value for r in clean if (value := per_cpu_second(r["requests"], r.get("cpu_s"))) is not None]


def median_per_cpu(rounds: Sequence[Mapping[str, Any]]) -> float | None:
    """The median round's requests per CPU-second. Not the best round, as for req/s: a server starved of a core
    can also get *cheaper* per request (it finds more work per wake-up), so noise moves it both ways."""
    values = per_cpu_values(rounds)
    return statistics.median(values) if values else None


Measure = Callable[[Sequence[Mapping[str, Any]]], float | None]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def measured(
    runs: Iterable[Mapping[str, Any]], workers: int, target: str, endpoint: str, of: Measure = best_rps
) -> float | None:
    for run in runs:
        if run["workers"] == workers and run["target"] == target and run["endpoint"] == endpoint:
            return of(run["rounds"])
    return None


# Every comparison the ratio tables show and the goals use: (name, numerator, denominator, column heading).
RATIOS = (
    ("default_vs_bare", "svc-default", "bare", "defaults / bare Flask"),  # flask-svc as shipped / bare Flask
    ("off_vs_bare", "svc-off", "bare", "all off / bare Flask"),  # all instrumentation off / bare Flask
    ("default_vs_fastapi", "svc-default", "fastapi", "defaults / FastAPI"),
    ("off_vs_fastapi", "svc-off", "fastapi", "all off / FastAPI"),
    ("default_vs_off", "svc-default", "svc-off", "defaults / all off"),  # metrics + access log / nothing
    ("sampled_vs_default", "svc-sampled", "svc-default", "tracing 10 % / defaults"),  # the chart's default
    ("on_vs_default", "svc-on", "svc-default", "tracing 100 % / defaults"),
    ("on_vs_off", "svc-on", "svc-off", "all on / all off"),
)


class RatioRow(SimpleNamespace):
    """One (``workers``, ``endpoint``) scenario and each ratio of RATIOS by name (None where a side did not run)."""


def ratios(runs: Sequence[Mapping[str, Any]], of: Measure = best_rps) -> list[RatioRow]:
    """Every comparison for each (workers, scenario), on one measure: best-round req/s or median req/CPU-s."""
    order = list(ENDPOINT_LABELS)
    scenarios = sorted({(r["workers"], r["endpoint"]) for r in runs}, key=lambda k: (k[0], order.index(k[1])))
    return [
        RatioRow(
            workers=workers,
            endpoint=endpoint,
            **{
                name: ratio(measured(runs, workers, top, endpoint, of), measured(runs, workers, bottom, endpoint, of))
                for name, top, bottom, _ in RATIOS
            },
        )
        for workers, endpoint in scenarios
    ]


@dataclass
class Goal:
    name: str
    target: str
    value: str
    met: bool | None  # None: not measured in this run
    detail: str = ""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**missed**", None: "not measured"}[self.met]


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "", missing: str = "n/a") -> str:
    return missing if value is None else f"{value:{spec}}{suffix}"


def _x(value: float | None) -> str:
    return _fmt(value, ".2f", TIMES)


def _beside(rps_rows: Sequence[RatioRow], attr: str) -> dict[tuple[int, str], float | None]:
    """Each scenario's req/s ratio, shown beside the req/CPU-s one a goal is judged on."""
    return {(row.workers, row.endpoint): getattr(row, attr) for row in rps_rows}


def _versus_goal(
    name: str, at_least: float, rows: Sequence[RatioRow], rps_rows: Sequence[RatioRow], versus: str, label: str
) -> Goal:
    """flask-svc's defaults at least ``at_least`` times ``versus`` in each of ``rows`` (req/CPU-s); the lowest
    decides. ``label`` names a row's scenario (a format of its fields); all off and req/s are shown beside."""
    attr, off = f"default_vs_{versus}", f"off_vs_{versus}"
    rps = _beside(rps_rows, attr)
    lowest = min((getattr(row, attr) for row in rows), default=None)
    details = (
        f"{label.format_map(vars(row))} {_x(getattr(row, attr))} (all off {_x(getattr(row, off))}; "
        f"req/s {_x(rps.get((row.workers, row.endpoint)))})"
        for row in rows
    )
    met = None if lowest is None else lowest >= at_least
    return Goal(name, f"≥ {at_least:.1f}{TIMES}", _x(lowest), met, ", ".join(details))


# Issue 15: what each level of instrumentation may cost, as 1 - (req/CPU-s with it) / (req/CPU-s without it), on
# the analyze scenarios (the /readyz and /livez probes are kept out of metrics, access log and tracing by design).
COST_GOALS = (
    ("metrics + access log: defaults vs all off", "default_vs_off", 0.10),
    ("tracing at 10 %: vs defaults", "sampled_vs_default", 0.10),
    ("tracing at 100 %: vs defaults", "on_vs_default", 0.30),
)


def _cost_goal(name: str, attr: str, limit: float, rows: Sequence[RatioRow], rps_rows: Sequence[RatioRow]) -> Goal:
    """At most ``limit`` of the CPU-efficiency lost, over the analyze scenarios; the worst one decides."""
    costs = [(row, 1 - getattr(row, attr)) for row in rows if row.endpoint in ANALYZE and getattr(row, attr)]
    worst = max((cost for _row, cost in costs), default=None)
    rps = {key: None if value is None else (1 - value) * 100 for key, value in _beside(rps_rows, attr).items()}
    details = (
        f"{row.endpoint} {row.workers}w {cost * 100:.0f} % "
        f"(req/s {_fmt(rps.get((row.workers, row.endpoint)), '.0f', ' %')})"
        for row, cost in costs
    )
    value = _fmt(None if worst is None else worst * 100, ".0f", " %")
    return Goal(
        name, f"≤ {limit:.0%}".replace("%", " %"), value, None if worst is None else worst <= limit, ", ".join(details)
    )


def _at_most_goal(name: str, limit: str, value: float | None, spec: str, unit: str, detail: str) -> Goal:
    met = None if value is None else value <= float(limit)
    return Goal(name, f"≤ {limit}{unit}", _fmt(value, spec, unit), met, detail)


def _start_goal(name: str, starts: Sequence[float], detail: str) -> Goal:
    """Start → ready within half a second, judged on the median of several starts."""
    median = statistics.median(starts) if starts else None
    return _at_most_goal(name, "0.5", median, ".2f", " s", detail if starts else "")


def goals(results: Mapping[str, Any]) -> list[Goal]:
    """The goals, judged on requests per CPU-second of the server's process tree (median round), with req/s (best
    round) beside. flask-svc is judged as shipped (its defaults) except where a goal names another variant; where a
    goal spans several scenarios the worst one decides."""
    runs = results.get("runs", [])
    table, rps_table = ratios(runs, median_per_cpu), ratios(runs)
    found = [_cost_goal(name, attr, limit, table, rps_table) for name, attr, limit in COST_GOALS]
    # flask-svc answers /livez in front of Flask; /readyz shows what a request through the whole stack costs.
    for endpoint, path in (("readyz", "GET /readyz"), ("livez", "/livez")):
        rows = [row for row in table if row.endpoint == endpoint and row.default_vs_bare is not None]
        found.append(_versus_goal(f"{path} vs bare Flask", 0.9, rows, rps_table, "bare", "{workers}w"))
    per_core = [row for row in table if row.endpoint in ANALYZE and row.workers == 1 and row.default_vs_fastapi]
    name = "analyze per core vs FastAPI (1 worker)"
    found.append(_versus_goal(name, 1.0, per_core, rps_table, "fastapi", "{endpoint}"))
    starts = results.get("startup", {}).get("svc", [])
    found.append(_start_goal("start → /readyz 200 (median)", starts, f"{len(starts)} starts, 1 worker"))
    idle = next((m for m in results.get("memory", []) if m["target"] == "svc-default" and m["workers"] == 1), None)
    rss, detail = (idle["idle_rss_mb"], f"PSS {idle['idle_pss_mb']:.0f} MB") if idle else (None, "")
    found.append(_at_most_goal("idle RSS, whole process tree (1 worker)", "60", rss, ".0f", " MB", detail))
    image = results.get("container") or {}
    size, base = image.get("size_mb"), image.get("base") or "unknown base"
    detail = f"on `{base}` (the goal is for python:3.12-slim)" if size else image.get("note", "")
    found.append(_at_most_goal("image size, uncompressed", "150", size, ".0f", " MB", detail))
    starts = image.get("starts") or []
    detail = f"{len(starts)} starts of `docker run --read-only`"
    found.append(_start_goal("container start → /readyz 200 (median)", starts, detail))
    wc = wordcount_ratio(results.get("wordcount"))
    ratio_, detail = (wc[0], f"{wc[1]:.0f} MB/s vs {wc[2]:.0f} MB/s") if wc else (None, "")
    met = None if ratio_ is None else ratio_ >= 0.5
    found.append(Goal("word count vs `wc -w`", f"≥ 0.5{TIMES}", _fmt(ratio_, ".2f", TIMES), met, detail))
    return found


def wordcount_ratio(wordcount: Mapping[str, Any] | None) -> tuple[float, float, float] | None:
    """(pipeline / the faster `wc -w`, pipeline MB/s, wc MB/s) for the ASCII file: judged against wc at its best."""
    if not wordcount:
        return None
    measures = {m["name"]: m for m in wordcount.get("ascii", {}).get("measures", [])}
    wc = max((m for name, m in measures.items() if name.startswith("wc -w")), key=lambda m: m["mb_per_s"], default=None)
    ours = next((m for name, m in measures.items() if name.startswith("flask-svc pipeline")), None)
    if not wc or not ours:
        return None
    return ours["mb_per_s"] / wc["mb_per_s"], ours["mb_per_s"], wc["mb_per_s"]


# ---- Markdown -----------------------------------------------------------------------------------------------------


def _range(values: Sequence[float]) -> str:
    return f"{min(values):,.0f}{DASH}{max(values):,.0f}" if values else "n/a"


def _spread(values: Sequence[float]) -> float | None:
    return 1 - min(values) / max(values) if len(values) > 1 and max(values) > 0 else None


def round_spread(
    runs: Sequence[Mapping[str, Any]], values: Callable[[Sequence[Mapping[str, Any]]], Sequence[float]] | None = None
) -> tuple[float, float] | None:
    """(median, worst) of 1 - lowest/highest round over all scenarios: how much the machine moved a measure (req/s
    by default) under the run."""
    of = values or (lambda rounds: [r["rps"] for r in rounds])
    spreads = [spread for run in runs if (spread := _spread(of(run["rounds"]))) is not None]
    if not spreads:
        return None
    return statistics.median(spreads), max(spreads)


TEMPLATES = Path(__file__).with_name("templates")


@functools.cache
def _environment() -> Any:
    # Imported here: bench.plot imports this module in the bench venv, which has no Jinja2 (nor the service).
    import jinja2

    from bench.corpus import MIB

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters["fmt"] = _fmt
    env.tests["startswith"] = str.startswith
    env.globals.update(
        {name: globals()[name] for name in ("TARGET_LABELS", "ENDPOINT_LABELS", "RATIOS", "TIMES", "DASH")},
        MIB=MIB,
        ratio=ratio,
        median=statistics.median,
        goals=goals,
        round_spread=round_spread,
        ratios=ratios,
        best_round=best_round,
        per_cpu_values=per_cpu_values,
        span=_range,
        median_per_cpu=median_per_cpu,
        slow_clients=_slow_clients,
    )
    return env


def render(template: str, **context: Any) -> str:
    """A Markdown file from one of bench/templates."""
    return str(_environment().get_template(template).render(**context)).rstrip() + "\n"


def render_table(macro: str, *args: Any) -> str:
    """One table of bench/templates/tables.md.j2, alone (bench.batch, bench.shards and bench.slowclients print them)."""
    return str(getattr(_environment().get_template("tables.md.j2").module, macro)(*args)).strip()


def _slow_clients(result: Mapping[str, Any]) -> str:
    # Here, not at the top: bench.slowclients starts servers (psutil), which the bench venv that plots has not.
    from bench.slowclients import render as render_slow_clients

    return render_slow_clients(result)


def render_markdown(results: Mapping[str, Any]) -> str:
    return render("report.md.j2", r=results)


def render_latest(results: Mapping[str, Any]) -> str:
    """The short summary the Benchmarks page includes: goals, the 1-worker table, links to the results and the plot."""
    return render("latest.md.j2", r=results)


# ---- the command lines of the standalone benches (bench.batch, bench.shards, bench.slowclients, bench.run) ---------


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cli(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser


def emit(results: Mapping[str, Any], table: str, json_path: Path | None, *args: Any) -> int:
    """Print a bench's table of tables.md.j2, write its results as JSON if asked; the exit status."""
    print(render_table(table, results, *args))
    if json_path:
        json_path.write_text(json.dumps(results, indent=1))
    return 0
