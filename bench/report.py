"""From a run's measurements (plain data, see bench/run.py) to ratios, goal verdicts and Markdown (bench/templates).
Pure functions, unit-tested without a server; imports nothing the bench venv (which plots) lacks."""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# Every server of the load matrix, in the plot's order: its label and its colour there.
TARGETS = {
    "svc-on": ("flask-svc, all on", "#c0392b"),
    "svc-default": ("flask-svc, defaults", "#e67e22"),
    "svc-sampled": ("flask-svc, tracing 10 %", "#d35400"),
    "svc-off": ("flask-svc, all off", "#f5b041"),
    "bare": ("bare Flask", "#2980b9"),
    "fastapi": ("FastAPI/uvicorn", "#27ae60"),
    "nginx": ("nginx static", "#7f8c8d"),
}
TARGET_LABELS = {key: label for key, (label, _colour) in TARGETS.items()}
ENDPOINT_LABELS = {"livez": "GET /livez", "readyz": "GET /readyz", "analyze-1k": "POST analyze 1 KB"}
ENDPOINT_LABELS["analyze-100k"] = "POST analyze 100 KB"
ANALYZE = ("analyze-1k", "analyze-100k")
TIMES, DASH = "\u00d7", "\u2013"  # spelled out so linters do not take them for an x and a hyphen
Rounds = Sequence[Mapping[str, Any]]
Measure = Callable[[Rounds], float | None]


def per_cpu_second(requests: int, cpu_s: float | None) -> float | None:
    """Requests per CPU-second; None when no CPU was measured (a window shorter than one clock tick)."""
    return requests / cpu_s if cpu_s and cpu_s > 0 else None


def _clean(rounds: Rounds) -> list[Mapping[str, Any]]:
    return [r for r in rounds if not r.get("errors")] or list(rounds)


def best_round(rounds: Rounds) -> Mapping[str, Any] | None:
    """The fastest clean round: on a shared machine other load only slows a run, so it is the least disturbed."""
    return max(_clean(rounds), key=lambda r: r["rps"], default=None)


def best_rps(rounds: Rounds) -> float | None:
    return float(best["rps"]) if (best := best_round(rounds)) else None


def per_cpu_values(rounds: Rounds) -> list[float]:
    """Each clean round's requests per CPU-second of the server's process tree (none for runs without CPU time)."""
    return [v for r in _clean(rounds) if (v := per_cpu_second(r["requests"], r.get("cpu_s"))) is not None]


def median_per_cpu(rounds: Rounds) -> float | None:
    """The median round, not the best: a server starved of a core can also get *cheaper* per request."""
    return statistics.median(values) if (values := per_cpu_values(rounds)) else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator


def measured(runs: Iterable[Mapping[str, Any]], workers: int, target: str, endpoint: str, of: Measure) -> float | None:
    found = (run for run in runs if (run["workers"], run["target"], run["endpoint"]) == (workers, target, endpoint))
    return next((of(run["rounds"]) for run in found), None)


# Every comparison the ratio tables show and the goals use: (name, numerator, denominator, column heading).
RATIOS = (
    ("default_vs_bare", "svc-default", "bare", "defaults / bare Flask"),
    ("off_vs_bare", "svc-off", "bare", "all off / bare Flask"),
    ("default_vs_fastapi", "svc-default", "fastapi", "defaults / FastAPI"),
    ("off_vs_fastapi", "svc-off", "fastapi", "all off / FastAPI"),
    ("default_vs_off", "svc-default", "svc-off", "defaults / all off"),
    ("sampled_vs_default", "svc-sampled", "svc-default", "tracing 10 % / defaults"),
    ("on_vs_default", "svc-on", "svc-default", "tracing 100 % / defaults"),
    ("on_vs_off", "svc-on", "svc-off", "all on / all off"),
)


def ratios(runs: Sequence[Mapping[str, Any]], of: Measure = best_rps) -> list[SimpleNamespace]:
    """For each (workers, scenario), every ratio of RATIOS by name (None where a side did not run)."""
    order = list(ENDPOINT_LABELS)
    scenarios = sorted({(r["workers"], r["endpoint"]) for r in runs}, key=lambda k: (k[0], order.index(k[1])))
    return [
        SimpleNamespace(workers=w, endpoint=e, **{n: ratio(measured(runs, w, a, e, of), measured(runs, w, b, e, of))
                                                  for n, a, b, _ in RATIOS})
        for w, e in scenarios
    ]  # fmt: skip


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


def _limit(name: str, value: float | None, limit: str, unit: str, spec: str, detail: str, most: bool = True) -> Goal:
    """``value`` at most (or at least) ``limit``, shown with ``spec`` and ``unit``."""
    met = None if value is None else (value <= float(limit) if most else value >= float(limit))
    return Goal(name, f"{'≤' if most else '≥'} {limit}{unit}", _fmt(value, spec, unit), met, detail)


# Issue 15: what each level of instrumentation may cost, 1 - (req/CPU-s with it) / (without it), on the analyze
# scenarios (the probes are kept out of metrics, access log and tracing by design).
COST_GOALS = (
    ("metrics + access log: defaults vs all off", "default_vs_off", 0.10),
    ("tracing at 10 %: vs defaults", "sampled_vs_default", 0.10),
    ("tracing at 100 %: vs defaults", "on_vs_default", 0.30),
)
# flask-svc's defaults at least so many times another server, in each scenario of a kind (the lowest decides):
# (name, at least, versus, which rows, how a row's scenario is named). /livez is answered in front of Flask;
# /readyz shows a request through the whole stack.
VERSUS_GOALS = (
    ("GET /readyz vs bare Flask", "0.9", "bare", lambda row: row.endpoint == "readyz", "{workers}w"),
    ("/livez vs bare Flask", "0.9", "bare", lambda row: row.endpoint == "livez", "{workers}w"),
    ("analyze per core vs FastAPI (1 worker)", "1.0", "fastapi", lambda r: r.endpoint in ANALYZE and r.workers == 1,
     "{endpoint}"),
)  # fmt: skip


def goals(results: Mapping[str, Any]) -> list[Goal]:
    """Judged on req/CPU-s of the server's process tree (median round), req/s (best round) beside; flask-svc as
    shipped (its defaults) except where a goal names a variant; where a goal spans scenarios the worst decides."""
    runs = results.get("runs", [])
    table, by_rps = ratios(runs, median_per_cpu), {(r.workers, r.endpoint): r for r in ratios(runs)}

    def rps(row: SimpleNamespace, attr: str) -> float | None:
        return getattr(by_rps[row.workers, row.endpoint], attr)

    found = []
    for name, attr, limit in COST_GOALS:
        costs = [(row, 1 - getattr(row, attr)) for row in table if row.endpoint in ANALYZE and getattr(row, attr)]
        worst = max((cost for _row, cost in costs), default=None)
        detail = ", ".join(f"{row.endpoint} {row.workers}w {cost * 100:.0f} % (req/s "
                           f"{_fmt(None if rps(row, attr) is None else (1 - rps(row, attr)) * 100, '.0f', ' %')})"
                           for row, cost in costs)  # fmt: skip
        value = _fmt(None if worst is None else worst * 100, ".0f", " %")
        met = None if worst is None else worst <= limit
        found.append(Goal(name, f"≤ {limit:.0%}".replace("%", " %"), value, met, detail))
    for name, least, versus, wanted, label in VERSUS_GOALS:
        attr, off = f"default_vs_{versus}", f"off_vs_{versus}"
        rows = [row for row in table if wanted(row) and getattr(row, attr) is not None]
        x = functools.partial(_fmt, spec=".2f", suffix=TIMES)
        detail = ", ".join(f"{label.format_map(vars(row))} {x(getattr(row, attr))} (all off {x(getattr(row, off))}; "
                           f"req/s {x(rps(row, attr))})" for row in rows)  # fmt: skip
        lowest = min((getattr(row, attr) for row in rows), default=None)
        found.append(_limit(name, lowest, least, TIMES, ".2f", detail, most=False))
    starts = results.get("startup", {}).get("svc", [])
    detail = f"{len(starts)} starts, 1 worker" if starts else ""
    found.append(_limit("start → /readyz 200 (median)", _median(starts), "0.5", " s", ".2f", detail))
    idle = next((m for m in results.get("memory", []) if m["target"] == "svc-default" and m["workers"] == 1), None)
    rss, detail = (idle["idle_rss_mb"], f"PSS {idle['idle_pss_mb']:.0f} MB") if idle else (None, "")
    found.append(_limit("idle RSS, whole process tree (1 worker)", rss, "60", " MB", ".0f", detail))
    image = results.get("container") or {}
    size, base = image.get("size_mb"), image.get("base") or "unknown base"
    detail = f"on `{base}` (the goal is for python:3.12-slim)" if size else image.get("note", "")
    found.append(_limit("image size, uncompressed", size, "150", " MB", ".0f", detail))
    starts = image.get("starts") or []
    detail = f"{len(starts)} starts of `docker run --read-only`" if starts else ""
    found.append(_limit("container start → /readyz 200 (median)", _median(starts), "0.5", " s", ".2f", detail))
    wc = wordcount_ratio(results.get("wordcount"))
    ratio_, detail = (wc[0], f"{wc[1]:.0f} MB/s vs {wc[2]:.0f} MB/s") if wc else (None, "")
    found.append(_limit("word count vs `wc -w`", ratio_, "0.5", TIMES, ".2f", detail, most=False))
    return found


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def wordcount_ratio(wordcount: Mapping[str, Any] | None) -> tuple[float, float, float] | None:
    """(pipeline / the faster `wc -w`, pipeline MB/s, wc MB/s) for the ASCII file: judged against wc at its best."""
    measures = {m["name"]: m for m in (wordcount or {}).get("ascii", {}).get("measures", [])}
    wc = max((m for n, m in measures.items() if n.startswith("wc -w")), key=lambda m: m["mb_per_s"], default=None)
    ours = next((m for n, m in measures.items() if n.startswith("flask-svc pipeline")), None)
    return (ours["mb_per_s"] / wc["mb_per_s"], ours["mb_per_s"], wc["mb_per_s"]) if wc and ours else None


def round_spread(runs: Sequence[Mapping[str, Any]], values: Callable[[Rounds], Sequence[float]] | None = None) -> Any:
    """(median, worst) of 1 - lowest/highest round over all scenarios: how much the machine moved a measure (req/s
    by default) under the run; None without two rounds anywhere."""
    of = values or (lambda rounds: [r["rps"] for r in rounds])
    spreads = [1 - min(v) / max(v) for run in runs if len(v := of(run["rounds"])) > 1 and max(v) > 0]
    return (statistics.median(spreads), max(spreads)) if spreads else None


@functools.cache
def _environment() -> Any:
    import jinja2  # here: the bench venv, which plots with this module's data, has no Jinja2

    from harness.corpus import MIB

    loader = jinja2.FileSystemLoader(Path(__file__).with_name("templates"))
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"], env.tests["startswith"] = _fmt, str.startswith
    names = ("TARGET_LABELS", "ENDPOINT_LABELS", "RATIOS", "TIMES", "DASH", "ratio", "goals", "round_spread", "ratios")
    env.globals.update({name: globals()[name] for name in names}, MIB=MIB, median=statistics.median)
    env.globals.update(best_round=best_round, per_cpu_values=per_cpu_values, median_per_cpu=median_per_cpu)
    env.globals["span"] = lambda v: f"{min(v):,.0f}{DASH}{max(v):,.0f}" if v else "n/a"
    # Here, not at the top: bench.slowclients starts servers (psutil), which the bench venv has not.
    env.globals["slow_clients_text"] = lambda result: importlib.import_module("bench.slowclients").render(result)
    env.filters["setting"] = lambda item, settings: (item[0], settings.get(item[1], "?"))  # (label, settings key)
    return env


def render_table(macro: str, *args: Any) -> str:
    """One macro of bench/templates/bench.md.j2: a table the standalone benches print, or a whole report."""
    return str(getattr(_environment().get_template("bench.md.j2").module, macro)(*args)).strip()


def render(macro: str, *args: Any) -> str:
    """A Markdown file: one of the reports of bench/templates/bench.md.j2 (``report``, ``latest``, ``model``)."""
    return render_table(macro, *args) + "\n"


def timed_passes(
    count: int, work: Callable[[], Any], cpu: Callable[[], float] = lambda: 0.0
) -> list[tuple[float, float, Any]]:
    """(wall seconds, CPU seconds by ``cpu``, answer) of each of ``count`` runs of ``work``."""
    found = []
    for _ in range(count):
        cpu_started, started = cpu(), time.perf_counter()
        answer = work()
        found.append((time.perf_counter() - started, cpu() - cpu_started, answer))
    return found


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cli(doc: str | None, json_out: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if json_out:
        parser.add_argument("--json", type=Path, help="also write the results here")
    return parser


def emit(results: Mapping[str, Any], table: str, json_path: Path | None, *args: Any) -> int:
    """Print a bench's table (a macro of bench.md.j2), write its results as JSON if asked; the exit status."""
    print(render_table(table, results, *args))
    if json_path:
        json_path.write_text(json.dumps(results, indent=1))
    return 0
