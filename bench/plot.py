"""The results PNG (`.tools/bench-venv/bin/python -m bench.plot <date>.json <date>.png`: matplotlib, nothing from the
service): a panel per scenario, workers side by side; req/s (best round) above, req/CPU-s (median round) below."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from bench.report import ENDPOINT_LABELS, TARGETS, best_rps, median_per_cpu, per_cpu_values

# (row title, the value plotted, every round's value for the error bar)
MEASURES = (
    ("requests/s (best round)", best_rps, lambda rounds: [r["rps"] for r in rounds]),
    ("requests per CPU-second (median round)", median_per_cpu, per_cpu_values),
)


def _panel(ax: Any, runs: list[dict[str, Any]], endpoint: str, workers: list[int], measure: Any) -> None:
    label, value_of, all_of = measure
    keys = [k for k in TARGETS if any(r["endpoint"] == endpoint and r["target"] == k for r in runs)]
    width = 0.8 / max(1, len(keys))
    for index, key in enumerate(keys):
        values, low, high = [], [], []
        for count in workers:
            run = next((r for r in runs if (r["workers"], r["target"], r["endpoint"]) == (count, key, endpoint)), None)
            value = (value_of(run["rounds"]) if run else None) or 0
            spread = (all_of(run["rounds"]) if run else []) or [value]
            values.append(value)
            low.append(max(0, value - min(spread)))
            high.append(max(0, max(spread) - value))
        at = [w + index * width - 0.4 + width / 2 for w in range(len(workers))]
        bars = ax.bar(at, values, width, yerr=[low, high], capsize=2, color=TARGETS[key][1], label=TARGETS[key][0])
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in values], fontsize=7, rotation=90, padding=3)
    ax.set_title(ENDPOINT_LABELS[endpoint])
    ax.set_xticks(range(len(workers)), [f"{w} worker{'s' if w > 1 else ''}" for w in workers])
    if endpoint == "livez":  # nginx is tens of times faster than any Python server: only a log scale shows both
        ax.set_yscale("log")
        ax.set_ylabel(f"{label}, log scale")
        ax.margins(y=0.3)
    else:
        ax.set_ylabel(label)
        ax.set_ylim(0, max(1.0, ax.get_ylim()[1]) * 1.15)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.0f}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda _value, _pos: ""))
    ax.grid(axis="y", which="major", alpha=0.3)


def plot(results: dict[str, Any], out: Path) -> None:
    runs = results["runs"]
    endpoints = [e for e in ENDPOINT_LABELS if any(r["endpoint"] == e for r in runs)]
    workers = sorted({r["workers"] for r in runs})
    fig, axes = plt.subplots(2, len(endpoints), figsize=(5 * len(endpoints), 8.6), squeeze=False)
    for row, measure in enumerate(MEASURES):
        for ax, endpoint in zip(axes[row], endpoints, strict=True):
            _panel(ax, runs, endpoint, workers, measure)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    machine = results.get("machine", {})
    title = f"flask-svc bench {results.get('date', '')} — {machine.get('nproc', '?')} CPUs, {machine.get('cpu', '?')}"
    fig.suptitle(f"{title}; error bars span every round", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
