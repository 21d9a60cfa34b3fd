"""Driving wrk: one bounded run against a loopback URL, parsed from the line bench/wrk.lua prints at the end."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.proc import tree_cpu_seconds

LUA_SCRIPT = Path(__file__).with_name("wrk.lua")
MARKER = "BENCH-JSON "


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class LoadSettings:
    """Fixed for every scenario of a run, so rows are comparable."""

    duration_s: float = 2.0
    warmup_s: float = 1.0
    connections: int = 16
    threads: int = 2
    timeout_s: float = 5.0

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, duration: float, warmup: float) -> None:
        """The load options bench.run and bench.model share."""
        add = parser.add_argument
        add("--duration", type=float, default=duration, help="seconds per measured round")
        add("--warmup", type=float, default=warmup, help="seconds of warm-up per scenario")
        add("--rounds", type=int, default=3, help="interleaved rounds per scenario")
        add("--connections", type=int, default=16)
        add("--threads", type=int, default=2, help="wrk threads")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LoadSettings:
        return cls(duration_s=args.duration, warmup_s=args.warmup, connections=args.connections, threads=args.threads)


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    bytes: int
    errors: dict[str, int]
    latency_ms: dict[str, float]  # mean, p50, p90, p99, max
    cpu_s: float | None = None  # CPU seconds of the server's process tree during the run, when asked for

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def parse_output(stdout: str) -> WrkResult:
    """The BENCH-JSON line bench/wrk.lua writes from wrk's ``done`` hook."""
    line = next((line for line in reversed(stdout.splitlines()) if line.startswith(MARKER)), None)
    if line is None:
        raise WrkError(f"no {MARKER.strip()} line in wrk output:\n{stdout[-2000:]}")
    data = json.loads(line[len(MARKER) :])
    errors = {key: int(value) for key, value in data["errors"].items()}
    latency = {key: value / 1000 for key, value in data["latency_us"].items()}
    return WrkResult(int(data["requests"]), data["duration_us"] / 1e6, int(data["bytes"]), errors, latency)


def command(url: str, settings: LoadSettings, duration_s: float) -> list[str]:
    if (wrk := shutil.which("wrk")) is None:
        raise WrkError("wrk is not installed (make setup-bench installs it)")
    limits = [f"--duration={max(1, round(duration_s))}s", f"--timeout={max(1, round(settings.timeout_s))}s"]
    return [wrk, f"--threads={settings.threads}", f"--connections={settings.connections}", *limits,
            f"--script={LUA_SCRIPT}", url]  # fmt: skip


def run(url: str, settings: LoadSettings, body: Path | None = None, duration_s: float | None = None,
        content_type: str = "text/plain", inference_header_length: int | None = None, cpu_of: int | None = None
        ) -> WrkResult:  # fmt: skip
    """One wrk run against a loopback URL, POSTing ``body`` when given, bounded by wrk's duration + a margin; with
    ``cpu_of``, the CPU seconds the process tree under that pid spent meanwhile."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise WrkError(f"loopback only: {url}")
    duration = settings.duration_s if duration_s is None else duration_s
    header = "" if inference_header_length is None else str(inference_header_length)
    env = {**os.environ, "BENCH_BODY_FILE": str(body or ""), "BENCH_CONTENT_TYPE": content_type}
    cpu_before = None if cpu_of is None else tree_cpu_seconds(cpu_of)
    env["BENCH_INFERENCE_HEADER_LENGTH"], limit = header, duration + settings.timeout_s + 15
    done = subprocess.run(command(url, settings, duration), env=env, capture_output=True, text=True, timeout=limit)
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout[-500:]}")
    result = parse_output(done.stdout)
    if cpu_of is not None and cpu_before is not None:
        result.cpu_s = tree_cpu_seconds(cpu_of) - cpu_before
    return result
