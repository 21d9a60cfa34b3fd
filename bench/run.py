"""`make bench` (``python -m bench.run --help``): every scenario side by side in one run, then
bench/results/<date>.{json,md,png} and latest.md. FastAPI, py-spy and matplotlib come from .tools/bench-venv;
everything listens on 127.0.0.1 only, and every load loop is bounded by wrk's duration."""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from bench import batch, profiling, report, slowclients, targets, wrk
from bench.targets import TARGETS, TRACED
from harness import proc
from harness.container import TEST_IMAGE, measure_start, run_container, wait_ready
from harness.corpus import generate_text
from harness.docker import DOCKER, docker
from harness.net import process_gone, wait_until_ready
from harness.otlp import otlp_receiver
from harness.server import ROOT, running_server, workers_of
from image.docker import image_size
from service.names import ANALYZE_PATH, LIVEZ, READYZ

RESULTS = ROOT / "bench" / "results"
ENDPOINTS = tuple(report.ENDPOINT_LABELS)  # readyz goes through the framework in every Python app
BODY_SIZES = {"analyze-1k": 1024, "analyze-100k": 100 * 1024}
DISTRIBUTIONS = ("flask", "werkzeug", "gunicorn", "flask-openapi3", "pydantic", "opentelemetry-sdk")
DISTRIBUTIONS += ("prometheus-client",)
BENCH_VENV_DISTRIBUTIONS = ("fastapi", "uvicorn", "uvloop", "httptools")
PROFILE_SECONDS = 4
# One worker's CPU by component for the scenarios behind the goals: (target, scenario, title).
PROFILED = (
    ("svc-default", "livez", "flask-svc GET /livez (defaults) — behind the /livez vs bare Flask goal"),
    ("bare", "livez", "bare Flask GET /livez — the floor, for comparison"),
    ("svc-default", "readyz", "flask-svc GET /readyz (defaults) — behind the /readyz vs bare Flask goal"),
    ("bare", "readyz", "bare Flask GET /readyz — the floor, for comparison"),
    ("svc-off", "analyze-1k", "flask-svc POST analyze 1 KB (all off) — the uninstrumented service"),
    ("svc-default", "analyze-1k", "flask-svc POST analyze 1 KB (defaults) — metrics and access log"),
    ("svc-sampled", "analyze-1k", "flask-svc POST analyze 1 KB (tracing 10 %) — behind the sampled goal"),
    ("svc-on", "analyze-1k", "flask-svc POST analyze 1 KB (tracing 100 %) — behind the always-on goal"),
)
IMPORT_LAYERS = ("gunicorn.app.wsgiapp", "flask", "pydantic", "flask_openapi3", "prometheus_client",
                 "prometheus_flask_exporter", "opentelemetry.sdk.trace",
                 "opentelemetry.exporter.otlp.proto.http.trace_exporter", "service.tracing_http",
                 "regex", "service.app")  # fmt: skip
_IMPORT_MEMORY_SCRIPT = """import importlib, json, sys
def rss():
    with open("/proc/self/statm") as f: return int(f.read().split()[1]) * 4096 / 1e6
rows, last = [], rss(); rows.append(["python itself", last, last])
for name in sys.argv[1:]:
    importlib.import_module(name); now = rss(); rows.append([name, now - last, now]); last = now
print(json.dumps(rows))"""


@dataclass
class Plan:
    settings: wrk.LoadSettings = field(default_factory=wrk.LoadSettings)
    workers: tuple[int, ...] = (1, 2)
    targets: tuple[str, ...] = tuple(TARGETS)
    endpoints: tuple[str, ...] = ENDPOINTS
    rounds: int = 3
    starts: int = 10
    container_starts: int = 5
    wordcount_mb: float = 16
    profiles: bool = True
    extras: bool = True  # the import-time table and the slow-client runs
    log: Callable[[str], None] = print


def _output(cmd: list[str], pattern: str = r"(.+)") -> str:
    """What a tool prints that ``pattern`` finds, or n/a."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    return match.group(1) if (match := re.search(pattern, done.stdout + done.stderr)) else "n/a"


def machine() -> dict[str, Any]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu,
            "kernel": platform.release(), "python": platform.python_version(),
            "memory_gib": psutil.virtual_memory().total / 2**30, "loadavg_start": _loadavg()}  # fmt: skip


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def versions() -> dict[str, str]:
    found = {}
    for dist in DISTRIBUTIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = "n/a"
            found[dist] = importlib.metadata.version(dist)
    if not targets.missing("fastapi"):
        script = f"import importlib.metadata as m; print(*map(m.version, {BENCH_VENV_DISTRIBUTIONS}))"
        out = _output([str(targets.BENCH_PYTHON), "-c", script]).split()
        found.update(zip(BENCH_VENV_DISTRIBUTIONS, out, strict=False))
    found["nginx"] = _output([targets.nginx_binary() or "nginx", "-v"], r"nginx/(\S+)")
    found["wrk"] = _output(["wrk", "-v"], r"wrk (\S+)")
    return found


def url_for(target: targets.Target, endpoint: str) -> str:
    return target.url + {"livez": LIVEZ, "readyz": READYZ}.get(endpoint, ANALYZE_PATH)


def check_answers(running: list[targets.Target], body: Path) -> str:
    """Every Python server must give the same analysis of the same body before its numbers mean anything."""
    seen = {}
    for target in (t for t in running if "analyze-1k" in t.endpoints):
        answer = requests.post(url_for(target, "analyze-1k"), data=body.read_bytes(),
                               headers={"Content-Type": "text/plain"}, timeout=10)  # fmt: skip
        answer.raise_for_status()
        got = answer.json()
        seen[target.key] = (got["bytes"], got["tokens"], got["unique"], tuple(w["word"] for w in got["top"]))
    if len(set(seen.values())) > 1:
        raise RuntimeError(f"servers disagree on the 1 KB analysis: {seen}")
    if not (first := next(iter(seen.values()), None)):
        return "no analyze endpoint ran"
    return f"all {len(seen)} Python servers answered the 1 KB body identically ({first[1]} tokens, {first[2]} unique)."


@contextlib.contextmanager
def start_targets(keys: tuple[str, ...], workers: int, sink: str, log: Callable[[str], None]
                  ) -> Iterator[list[targets.Target]]:  # fmt: skip
    with contextlib.ExitStack() as stack:
        running = []
        for key in keys:
            if reason := targets.missing(key):
                log(f"{key} skipped: {reason}")
                continue
            for attempt in (1, 2):
                try:
                    running.append(stack.enter_context(targets.start(key, workers, sink)))
                    break
                except (RuntimeError, TimeoutError) as error:  # e.g. a port taken between picking and binding
                    if attempt == 2:
                        raise
                    log(f"{key} did not start ({str(error)[:300]}); one more try")
        yield running


def measure_matrix(plan: Plan, results: dict[str, Any], tmp: Path, sink: Any) -> None:
    """Each worker count, target and scenario in interleaved rounds; idle and peak memory; the profiles."""
    settings, log, own, sink_cpu = plan.settings, plan.log, psutil.Process(), 0.0
    bodies = {endpoint: tmp / f"{endpoint}.txt" for endpoint in BODY_SIZES}
    for endpoint, size in BODY_SIZES.items():
        bodies[endpoint].write_bytes(generate_text(size, seed=size))
    for workers in plan.workers:
        log(f"{workers} worker(s): starting {', '.join(plan.targets)}")
        with start_targets(plan.targets, workers, sink.endpoint, log) as running:
            if any("analyze-1k" in t.endpoints for t in running) and "analyze-1k" in plan.endpoints:
                results["sanity"] = check_answers(running, bodies["analyze-1k"])
            time.sleep(1.0)  # let start-up settle before the idle reading
            memory = {}  # by target, in results["memory"] too
            for target in running:
                rss, pss = proc.tree_memory(target.pid)
                each = [round(rss_mb, 1) for rss_mb in proc.process_rss(target.pid)]
                memory[target.key] = {"target": target.key, "workers": workers, "idle_rss_mb": rss, "idle_pss_mb": pss,
                                      "processes_rss_mb": each}  # fmt: skip
                results["memory"].append(memory[target.key])
            for endpoint in plan.endpoints:
                serving, body = [t for t in running if endpoint in t.endpoints], bodies.get(endpoint)
                for target in serving if settings.warmup_s > 0 else ():
                    wrk.run(url_for(target, endpoint), settings, body, duration_s=settings.warmup_s)
                records: dict[str, list[dict[str, Any]]] = {t.key: [] for t in serving}
                for index in range(plan.rounds):  # rotated each round: no server always right after the same one
                    for target in serving[index % len(serving) :] + serving[: index % len(serving)]:
                        where, cpu_before = f"{workers}w {target.key} {endpoint}", sum(own.cpu_times()[:2])
                        try:
                            with proc.PeakMemory(target.pid) as peak:
                                got = wrk.run(url_for(target, endpoint), settings, body, cpu_of=target.pid)
                        except (wrk.WrkError, subprocess.TimeoutExpired) as error:
                            log(f"  {where}: wrk failed, round dropped: {error}")
                            results.setdefault("failures", []).append(f"{where}: {error}")
                            continue
                        loaded = memory[target.key]  # the peak over every round
                        loaded["loaded_rss_mb"] = max(loaded.get("loaded_rss_mb", 0.0), peak.rss)
                        loaded["loaded_pss_mb"] = max(loaded.get("loaded_pss_mb", 0.0), peak.pss)
                        if target.key in TRACED:
                            sink_cpu += sum(own.cpu_times()[:2]) - cpu_before
                        latency = {f"{p}_ms": got.latency_ms[p] for p in ("p50", "p90", "p99")}
                        records[target.key].append({"rps": got.rps, "requests": got.requests, "cpu_s": got.cpu_s,
                                                    **latency, "errors": got.error_count})  # fmt: skip
                        log(f"  {workers}w {target.key:11} {endpoint:12} {got.rps:9,.0f} req/s  "
                            f"{report.per_cpu_second(got.requests, got.cpu_s) or 0:9,.0f} req/CPU-s  p50 "
                            f"{got.latency_ms['p50']:.2f} ms  p99 {got.latency_ms['p99']:.2f} ms"
                            + (f"  ERRORS {got.errors}" if got.error_count else ""))  # fmt: skip
                for key, rounds in records.items():
                    results["runs"].append({"workers": workers, "target": key, "endpoint": endpoint, "rounds": rounds})
            if plan.profiles and workers == min(plan.workers) and profiling.available():
                results["profiles"] += profile_servers(running, bodies, settings, tmp, log)
            results["tracing"]["spans_dropped"] += spans_dropped(running)
        results["tracing"]["spans_received"] += len(sink.spans)
        sink.spans.clear()
    results["tracing"]["sink_cpu_s"] = sink_cpu


def spans_dropped(running: list[targets.Target]) -> int:
    """flask_svc_otel_spans_dropped_total summed over reasons, from the instrumented server's metrics port."""
    total = 0
    for target in (t for t in running if t.key in TRACED and t.metrics_port):
        text = requests.get(f"http://127.0.0.1:{target.metrics_port}/metrics", timeout=5).text
        lines = (line for line in text.splitlines() if line.startswith("flask_svc_otel_spans_dropped_total"))
        total += sum(int(float(line.rsplit(" ", 1)[1])) for line in lines)
    return total


def profile_servers(running: list[targets.Target], bodies: dict[str, Path], settings: wrk.LoadSettings, tmp: Path,
                    log: Callable[[str], None]) -> list[dict[str, Any]]:  # fmt: skip
    """py-spy on one worker of each PROFILED scenario while wrk keeps it busy."""
    by_key, profiles = {t.key: t for t in running}, []
    for key, endpoint, title in PROFILED:
        target = by_key.get(key)
        # workers_of: not flask-svc's metrics server, also a child of its master
        if target is None or endpoint not in target.endpoints or not (workers := workers_of(target.pid)):
            continue
        log(f"  profiling {title}")
        url, body = url_for(target, endpoint), bodies.get(endpoint)
        load = lambda url=url, body=body: wrk.run(url, settings, body, duration_s=PROFILE_SECONDS + 1)  # noqa: E731
        profiles.append(asdict(profiling.profile_under_load(title, workers[0].pid, PROFILE_SECONDS, load, tmp)))
    return profiles


def measure_starts(count: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Spawn → first 200 from /readyz, for flask-svc (1 worker, tracing off) and bare Flask on gunicorn. A start that
    fails (say, a port taken between picking and binding on a shared machine) is counted and logged, not timed."""
    found: dict[str, Any] = {"svc": [], "bare": [], "failed": 0}
    # Both apps start from bytecode, as the image's service does (its Dockerfile compiles it): this machine may set
    # PYTHONDONTWRITEBYTECODE, and then every start would compile the sources again.
    for sources in (ROOT / "service", ROOT / "bench" / "apps"):
        compileall.compile_dir(sources, quiet=1)
    attempts = 0
    while len(found["svc"]) < count and attempts < count + 3:
        attempts += 1
        started = time.monotonic()
        with running_server(targets.svc_env(1, "svc-default"), ready=False) as server:
            try:
                wait_until_ready(server.port, gone=process_gone(server.process), interval=0.005)
                found["svc"].append(time.monotonic() - started)
            except (RuntimeError, TimeoutError) as error:
                found["failed"] += 1
                time.sleep(0.2)  # let the pump thread collect the last lines
                log(f"a flask-svc start failed: {error}; last lines: {server.lines[-5:]}")
        started = time.monotonic()
        try:
            with targets.start("bare", 1):
                found["bare"].append(time.monotonic() - started)
        except RuntimeError as error:
            found["failed"] += 1
            log(f"a bare Flask start failed: {error}")
    if found["svc"] and found["bare"]:
        log(f"start → ready median: flask-svc {statistics.median(found['svc']):.3f} s, "
            f"bare Flask {statistics.median(found['bare']):.3f} s ({len(found['svc'])} starts)")  # fmt: skip
    return found


def container(count: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Image size, `docker run` → /readyz 200 (harness.container, hardened as the tests and the chart run it) and
    the idle container's memory, only when a Docker engine and the image are present."""
    found: dict[str, Any] = {"image": TEST_IMAGE, "size_mb": None, "starts": []}
    if not os.access(DOCKER, os.X_OK):
        return found | {"note": "No container engine on this machine."}
    try:
        found["size_mb"] = image_size(TEST_IMAGE) / 1e6
    except RuntimeError:
        hint = "build it with the container tests or `make image IMAGE_TAG=test`"
        return found | {"note": f"No image {TEST_IMAGE} ({hint})."}
    label = '{{ index .Config.Labels "org.opencontainers.image.base.name" }}'  # the BASE_IMAGE build arg
    base = docker("image", "inspect", "--format", label, TEST_IMAGE, check=False, timeout=30)
    found["base"] = base.stdout.strip() or None
    try:
        for _ in range(count):
            found["starts"].append(measure_start(TEST_IMAGE, interval=0.005)["run_to_ready_s"])
        running = run_container(TEST_IMAGE)
        try:
            wait_ready(running, interval=0.005)
            found["idle_memory_mb"] = container_memory(running.name)
        finally:
            running.remove()
    except (RuntimeError, subprocess.TimeoutExpired, TimeoutError) as error:
        found["note"] = f"a container start failed: {error}"
    if found["starts"]:
        median = statistics.median(found["starts"])
        log(f"container start → ready median {median:.3f} s, image {found['size_mb']:.0f} MB")
    return found


_SIZE_UNITS = {"B": 1e-6, "KIB": 1024 / 1e6, "MIB": 2**20 / 1e6, "GIB": 2**30 / 1e6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}


def parse_docker_memory(usage: str) -> float | None:
    """``docker stats`` MemUsage (``"45.3MiB / 23.5GiB"``) → MB used, or None when unreadable."""
    match = re.match(r"\s*([\d.]+)\s*([KMG]i?B|B)\b", usage, flags=re.IGNORECASE)
    return None if match is None else float(match[1]) * _SIZE_UNITS[match[2].upper()]


def container_memory(name: str) -> float | None:
    """The container's memory as its cgroup counts it (what a Kubernetes limit applies to), a second after ready."""
    time.sleep(1)
    stats = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", name, check=False, timeout=30)
    return parse_docker_memory(stats.stdout) if stats.returncode == 0 else None


def wordcount(plan: Plan, results: dict[str, Any], tmp: Path) -> None:
    """bench.wordcount on ASCII and on 1 % non-ASCII prose, and a py-spy profile of the pipeline."""
    found: dict[str, Any] = {"passes": 3}
    for key, size, share in (("ascii", plan.wordcount_mb, 0.0), ("unicode", plan.wordcount_mb / 4, 0.01)):
        out = tmp / f"wordcount-{key}.json"
        cmd = [sys.executable, "-m", "bench.wordcount", f"--mb={size}", "--passes=3", f"--json={out}"]
        subprocess.run([*cmd, f"--unicode-share={share}"], cwd=ROOT, check=True, timeout=300, capture_output=True)
        found[key] = json.loads(out.read_text())
    results["wordcount"] = found
    if ratio := report.wordcount_ratio(found):
        plan.log(f"word count: {ratio[1]:.1f} MB/s vs wc -w {ratio[2]:.1f} MB/s = {ratio[0]:.2f} of it")
    if plan.profiles and profiling.available():
        text, out = tmp / "wordcount-profile.txt", tmp / "wordcount-spy.txt"
        text.write_bytes(generate_text(int(plan.wordcount_mb * 2**20)))
        cmd = [sys.executable, "-m", "bench.wordcount", f"--file={text}", "--passes=2", "--python-only"]
        profiling.record_command(cmd, out, timeout=300)
        note = "The service's pipeline over 16 KiB chunks, as `POST /api/v1/wordcount` runs it."
        title = "word count, ASCII prose — behind the word-count goal"
        summary = profiling.summarise(title, profiling.parse_collapsed(out.read_text()), note=note)
        results["profiles"].append(asdict(summary))


def import_costs(results: dict[str, Any]) -> None:
    """Start-up profile: import time by package, and resident memory added by each layer of imports."""
    modules = "import gunicorn.app.wsgiapp, gunicorn.workers.gthread, service.app"
    run = lambda *a: subprocess.run([sys.executable, *a], cwd=ROOT, capture_output=True, text=True, timeout=60)  # noqa: E731
    timing = profiling.parse_importtime(run("-X", "importtime", "-c", modules).stderr)
    results["import_costs"] = profiling.import_cost_by_package(timing)
    memory = run("-c", _IMPORT_MEMORY_SCRIPT, *IMPORT_LAYERS)
    memory.check_returncode()
    results["import_memory"] = json.loads(memory.stdout)


def execute(plan: Plan, tmp: Path, wordcount_too: bool = True, container_too: bool = True) -> dict[str, Any]:
    started, load = time.monotonic(), plan.settings
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "settings": {
            "load": f"wrk, {load.threads} threads, {load.connections} connections, {load.warmup_s:.0f} s warm-up + "
            f"{load.duration_s:.0f} s per round, keep-alive, 127.0.0.1",
            "rounds": plan.rounds,
            "bodies": "generated English-like prose, text/plain, 1 KiB and 100 KiB, default query (top 10)",
            **{key.replace("-", "_"): what for key, (what, _env) in TARGETS.items()},
        },
        "runs": [], "memory": [], "profiles": [], "tracing": {"spans_received": 0, "spans_dropped": 0},
    }  # fmt: skip
    with otlp_receiver() as sink:
        measure_matrix(plan, results, tmp, sink)
    # The phases after the matrix are independent: one that fails is recorded and the run still writes its files.
    phases: list[tuple[str, bool, Callable[[], object]]] = [
        ("startup", bool(plan.starts), lambda: results.update(startup=measure_starts(plan.starts, plan.log))),
        ("container", container_too, lambda: results.update(container=container(plan.container_starts, plan.log))),
        ("wordcount", wordcount_too, lambda: wordcount(plan, results, tmp)),
        ("imports", plan.profiles and plan.extras, lambda: import_costs(results)),
        ("slow-clients", plan.extras, lambda: results.update(slow_clients=slowclients.run(plan.log))),
        ("batch", plan.extras, lambda: results.update(batch=batch.run(plan.log))),
    ]
    for name, _wanted, phase in (p for p in phases if p[1]):
        try:
            phase()
        except (OSError, RuntimeError, TimeoutError, subprocess.SubprocessError, ValueError) as error:
            plan.log(f"{name} phase failed: {error}")
            results.setdefault("failures", []).append(f"{name}: {error}")
    results["machine"]["loadavg_end"] = _loadavg()
    results["elapsed_s"] = time.monotonic() - started
    return results


def write(results: dict[str, Any], out_dir: Path, plot: bool = True) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / results["date"]
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    stem.with_suffix(".md").write_text(report.render("report", results))
    (out_dir / "latest.md").write_text(report.render("latest", results))
    if plot and not targets.missing("fastapi"):  # matplotlib lives in the bench venv
        files = [str(stem.with_suffix(".json")), str(stem.with_suffix(".png"))]
        subprocess.run([str(targets.BENCH_PYTHON), "-m", "bench.plot", *files], cwd=ROOT, check=True, timeout=120)
    return stem.with_suffix(".md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="flask-svc benchmarks (issue 7)")
    wrk.LoadSettings.add_arguments(parser, duration=2, warmup=1)
    add = parser.add_argument
    add("--workers", default="1,2", help="worker counts to run, comma-separated")
    add("--targets", default=",".join(TARGETS))
    add("--endpoints", default=",".join(ENDPOINTS), help="scenarios to run, comma-separated")
    only = "only the load matrix (and its profiles): no starts, container, word count, imports or slow clients"
    add("--matrix-only", action="store_true", help=only)
    add("--starts", type=int, default=10, help="starts for the start → ready median")
    add("--container-starts", type=int, default=5)
    add("--wordcount-mb", type=float, default=16)
    add("--no-profiles", action="store_true")
    add("--out", type=Path, default=RESULTS)
    add("--render", type=Path, help="only re-render the Markdown and plot from this results JSON")
    args = parser.parse_args(argv)
    if args.render:
        write(json.loads(args.render.read_text()), args.out)
        return 0
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: run `make setup-bench-full`")
    split = lambda text: tuple(text.split(","))  # noqa: E731
    plan = Plan(wrk.LoadSettings.from_args(args), tuple(map(int, split(args.workers))), split(args.targets),
                split(args.endpoints), args.rounds, 0 if args.matrix_only else args.starts, args.container_starts,
                args.wordcount_mb, not args.no_profiles, not args.matrix_only, report.log)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="flask-svc-bench-") as tmp:
        results = execute(plan, Path(tmp), wordcount_too=not args.matrix_only, container_too=not args.matrix_only)
    markdown = write(results, args.out)
    report.log(f"done in {results['elapsed_s']:.0f} s: {os.path.relpath(markdown, ROOT)}")
    print(report.render_table("ratio_table", report.ratios(results["runs"], report.median_per_cpu)))
    print()
    print(report.render_table("goal_table", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
