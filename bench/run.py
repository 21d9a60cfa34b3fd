"""`make bench` (``python -m bench.run --help``): every scenario side by side in one run, then
bench/results/<date>.{json,md,png} and latest.md. FastAPI, py-spy and matplotlib come from .tools/bench-venv;
everything listens on 127.0.0.1 only, and every load loop is bounded by wrk's duration."""

from __future__ import annotations

import argparse
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

from bench import batch, profiling, report, slowclients, targets, wrk
from bench.corpus import generate_text
from bench.targets import TRACED
from harness import proc
from harness.container import TEST_IMAGE, run_container, wait_ready
from harness.docker import DOCKER, docker
from harness.otlp import otlp_receiver
from harness.server import ROOT, running_server, workers_of
from image.docker import image_size
from service.names import ANALYZE_PATH, LIVEZ, READYZ

RESULTS = ROOT / "bench" / "results"
IMAGE = TEST_IMAGE
# readyz goes through the framework in every Python app (flask-svc answers /livez in its worker loop).
ENDPOINTS = tuple(report.ENDPOINT_LABELS)
BODY_SIZES = {"analyze-1k": 1024, "analyze-100k": 100 * 1024}
ALL_TARGETS = ("svc-on", "svc-sampled", "svc-default", "svc-off", "bare", "fastapi", "nginx")  # the start order
DISTRIBUTIONS = (
    "flask",
    "werkzeug",
    "gunicorn",
    "flask-openapi3",
    "pydantic",
    "opentelemetry-sdk",
    "prometheus-client",
)
BENCH_VENV_DISTRIBUTIONS = ("fastapi", "uvicorn", "uvloop", "httptools")


@dataclass
class Plan:
    settings: wrk.LoadSettings = field(default_factory=wrk.LoadSettings)
    workers: tuple[int, ...] = (1, 2)
    targets: tuple[str, ...] = ALL_TARGETS
    endpoints: tuple[str, ...] = ENDPOINTS
    rounds: int = 3
    starts: int = 10
    container_starts: int = 5
    wordcount_mb: float = 16
    profiles: bool = True
    extras: bool = True  # the import-time table and the slow-client runs
    log: Callable[[str], None] = print


# ---- facts about the machine and the software ---------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _tool_version(cmd: list[str], pattern: str) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1) if match else "n/a"


def versions() -> dict[str, str]:
    found = {}
    for dist in DISTRIBUTIONS:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "n/a"
    if not targets.missing("fastapi"):
        script = f"import importlib.metadata as m; print(*map(m.version, {BENCH_VENV_DISTRIBUTIONS}))"
        out = _tool_version([str(targets.BENCH_PYTHON), "-c", script], r"(.+)").split()
        found.update(zip(BENCH_VENV_DISTRIBUTIONS, out, strict=False))
    found["nginx"] = _tool_version([targets.nginx_binary() or "nginx", "-v"], r"nginx/(\S+)")
    found["wrk"] = _tool_version(["wrk", "-v"], r"wrk (\S+)")
    return found


# ---- load runs ----------------------------------------------------------------------------------------------------


def body_files(tmp: Path) -> dict[str, Path]:
    files = {}
    for endpoint, size in BODY_SIZES.items():
        path = tmp / f"{endpoint}.txt"
        path.write_bytes(generate_text(size, seed=size))
        files[endpoint] = path
    return files


def url_for(target: targets.Target, endpoint: str) -> str:
    return target.url + {"livez": LIVEZ, "readyz": READYZ}.get(endpoint, ANALYZE_PATH)


def check_answers(running: list[targets.Target], bodies: dict[str, Path]) -> str:
    """Every Python server must give the same analysis of the same body before its numbers mean anything."""
    import requests

    seen = {}
    for target in running:
        if "analyze-1k" not in target.endpoints:
            continue
        answer = requests.post(
            url_for(target, "analyze-1k"),
            data=bodies["analyze-1k"].read_bytes(),
            headers={"Content-Type": "text/plain"},
            timeout=10,
        )
        answer.raise_for_status()
        body = answer.json()
        seen[target.key] = (body["bytes"], body["tokens"], body["unique"], tuple(w["word"] for w in body["top"]))
    if len(set(seen.values())) > 1:
        raise RuntimeError(f"servers disagree on the 1 KB analysis: {seen}")
    first = next(iter(seen.values()), None)
    if first is None:
        return "no analyze endpoint ran"
    return f"all {len(seen)} Python servers answered the 1 KB body identically ({first[1]} tokens, {first[2]} unique)."


@contextlib.contextmanager
def start_targets(
    keys: tuple[str, ...], workers: int, sink: str, log: Callable[[str], None]
) -> Iterator[list[targets.Target]]:
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
    settings, log = plan.settings, plan.log
    bodies = body_files(tmp)
    own = psutil.Process()
    sink_cpu = 0.0
    for workers in plan.workers:
        log(f"{workers} worker(s): starting {', '.join(plan.targets)}")
        with start_targets(plan.targets, workers, sink.endpoint, log) as running:
            if any("analyze-1k" in t.endpoints for t in running) and "analyze-1k" in plan.endpoints:
                results["sanity"] = check_answers(running, bodies)
            time.sleep(1.0)  # let start-up settle before the idle reading
            memory: dict[str, dict[str, Any]] = {}  # by target, in results["memory"] too
            for target in running:
                rss, pss = proc.tree_memory(target.pid)
                processes = [round(each, 1) for each in proc.process_rss(target.pid)]
                memory[target.key] = {"target": target.key, "workers": workers, "idle_rss_mb": rss, "idle_pss_mb": pss}
                memory[target.key]["processes_rss_mb"] = processes
                results["memory"].append(memory[target.key])
            for endpoint in plan.endpoints:
                serving = [t for t in running if endpoint in t.endpoints]
                body = bodies.get(endpoint)
                for target in serving:
                    if settings.warmup_s > 0:
                        wrk.run(url_for(target, endpoint), settings, body, duration_s=settings.warmup_s)
                records: dict[str, list[dict[str, Any]]] = {t.key: [] for t in serving}
                for round_index in range(plan.rounds):
                    # Rotate the order each round so no server always runs right after the same neighbour.
                    order = serving[round_index % len(serving) :] + serving[: round_index % len(serving)]
                    for target in order:
                        cpu_before = sum(own.cpu_times()[:2])
                        try:
                            with proc.PeakMemory(target.pid) as sampler:
                                result = wrk.run(url_for(target, endpoint), settings, body, cpu_of=target.pid)
                        except (wrk.WrkError, subprocess.TimeoutExpired) as error:
                            log(f"  {workers}w {target.key} {endpoint}: wrk failed, round dropped: {error}")
                            results.setdefault("failures", []).append(f"{workers}w {target.key} {endpoint}: {error}")
                            continue
                        loaded = memory[target.key]  # the peak over every round
                        loaded["loaded_rss_mb"] = max(loaded.get("loaded_rss_mb", 0.0), sampler.rss)
                        loaded["loaded_pss_mb"] = max(loaded.get("loaded_pss_mb", 0.0), sampler.pss)
                        if target.key in TRACED:
                            sink_cpu += sum(own.cpu_times()[:2]) - cpu_before
                        records[target.key].append(
                            {
                                "rps": result.rps,
                                "requests": result.requests,
                                "cpu_s": result.cpu_s,
                                "p50_ms": result.latency_ms["p50"],
                                "p90_ms": result.latency_ms["p90"],
                                "p99_ms": result.latency_ms["p99"],
                                "errors": result.error_count,
                            }
                        )
                        per_cpu = report.per_cpu_second(result.requests, result.cpu_s)
                        log(
                            f"  {workers}w {target.key:11} {endpoint:12} {result.rps:9,.0f} req/s  "
                            f"{per_cpu or 0:9,.0f} req/CPU-s  "
                            f"p50 {result.latency_ms['p50']:.2f} ms  p99 {result.latency_ms['p99']:.2f} ms"
                            + (f"  ERRORS {result.errors}" if result.error_count else "")
                        )
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
    import requests

    total = 0
    for target in running:
        if target.key not in TRACED or not target.metrics_port:
            continue
        text = requests.get(f"http://127.0.0.1:{target.metrics_port}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith("flask_svc_otel_spans_dropped_total"):
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


PROFILE_SECONDS = 4


def profile_servers(
    running: list[targets.Target],
    bodies: dict[str, Path],
    settings: wrk.LoadSettings,
    tmp: Path,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """One worker's CPU by component for the scenarios behind the goals: /livez and /readyz beside bare Flask's,
    analyze 1 KB with each level of instrumentation (all off, defaults, tracing at 10 % and 100 %)."""
    by_key = {t.key: t for t in running}
    wanted = [
        ("svc-default", "livez", "flask-svc GET /livez (defaults) — behind the /livez vs bare Flask goal"),
        ("bare", "livez", "bare Flask GET /livez — the floor, for comparison"),
        ("svc-default", "readyz", "flask-svc GET /readyz (defaults) — behind the /readyz vs bare Flask goal"),
        ("bare", "readyz", "bare Flask GET /readyz — the floor, for comparison"),
        ("svc-off", "analyze-1k", "flask-svc POST analyze 1 KB (all off) — the uninstrumented service"),
        ("svc-default", "analyze-1k", "flask-svc POST analyze 1 KB (defaults) — metrics and access log"),
        ("svc-sampled", "analyze-1k", "flask-svc POST analyze 1 KB (tracing 10 %) — behind the sampled goal"),
        ("svc-on", "analyze-1k", "flask-svc POST analyze 1 KB (tracing 100 %) — behind the always-on goal"),
    ]
    profiles = []
    for key, endpoint, title in wanted:
        target = by_key.get(key)
        if target is None or endpoint not in target.endpoints:
            continue
        workers = workers_of(target.pid)  # not flask-svc's metrics server, also a child of its master
        if not workers:
            continue
        log(f"  profiling {title}")
        url, body = url_for(target, endpoint), bodies.get(endpoint)
        profile = profiling.profile_under_load(
            title,
            workers[0].pid,
            PROFILE_SECONDS,
            lambda url=url, body=body: wrk.run(url, settings, body, duration_s=PROFILE_SECONDS + 1),
            tmp,
        )
        profiles.append(asdict(profile))
    return profiles


# ---- start-up, image, word count ----------------------------------------------------------------------------------


def measure_starts(count: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Spawn → first 200 from /readyz, for flask-svc (1 worker, tracing off) and bare Flask on gunicorn.

    A start that fails (say, a port taken between picking and binding by another process on a shared machine) is
    counted and logged, not timed; the next attempt goes on."""
    found: dict[str, Any] = {"svc": [], "bare": [], "failed": 0}
    attempts = 0
    while len(found["svc"]) < count and attempts < count + 3:
        attempts += 1
        started = time.monotonic()
        with running_server(targets.svc_env(1, "svc-default"), ready=False) as server:
            try:
                found["svc"].append(targets.poll_ready(server.port, server.process) - started)
            except (RuntimeError, TimeoutError) as error:
                found["failed"] += 1
                time.sleep(0.2)  # let the pump thread collect the last lines
                log(f"a flask-svc start failed: {error}; last lines: {server.lines[-5:]}")
        started = time.monotonic()
        try:
            with targets.bare_flask(1):
                found["bare"].append(time.monotonic() - started)
        except RuntimeError as error:
            found["failed"] += 1
            log(f"a bare Flask start failed: {error}")
    if found["svc"] and found["bare"]:
        log(
            f"start → ready median: flask-svc {statistics.median(found['svc']):.3f} s, "
            f"bare Flask {statistics.median(found['bare']):.3f} s ({len(found['svc'])} starts)"
        )
    return found


def container(count: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Image size and container start → ready, only when a Docker engine and the image are present."""
    found: dict[str, Any] = {"image": IMAGE, "size_mb": None, "starts": []}
    if not os.access(DOCKER, os.X_OK):
        found["note"] = "No container engine on this machine."
        return found
    try:
        found["size_mb"] = image_size(IMAGE) / 1e6
    except RuntimeError:
        found["note"] = f"No image {IMAGE} (build it with the container tests or `make image IMAGE_TAG=test`)."
        return found
    label = '{{ index .Config.Labels "org.opencontainers.image.base.name" }}'
    base = docker("image", "inspect", "--format", label, IMAGE, check=False, timeout=30)
    found["base"] = base.stdout.strip() or None  # the Dockerfile's BASE_IMAGE build arg, as labelled
    for index in range(count):
        started = time.time()
        try:
            running = run_container(IMAGE)  # hardened as the tests and the chart run it
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            found["note"] = f"docker run failed: {error}"
            break
        try:
            found["starts"].append(wait_ready(running, interval=0.005) - started)
            if index == count - 1:
                found["idle_memory_mb"] = container_memory(running.name)
        except TimeoutError:
            found["note"] = "a container did not become ready within 30 s"
            break
        finally:
            running.remove()
    if found["starts"]:
        median = statistics.median(found["starts"])
        log(f"container start → ready median {median:.3f} s, image {found['size_mb']:.0f} MB")
    return found


_SIZE_UNITS = {"B": 1e-6, "KIB": 1024 / 1e6, "MIB": 2**20 / 1e6, "GIB": 2**30 / 1e6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}


def parse_docker_memory(usage: str) -> float | None:
    """``docker stats`` MemUsage (``"45.3MiB / 23.5GiB"``) → MB used, or None when unreadable."""
    match = re.match(r"\s*([\d.]+)\s*([KMG]i?B|B)\b", usage, flags=re.IGNORECASE)
    if match is None:
        return None
    return float(match[1]) * _SIZE_UNITS[match[2].upper()]


def container_memory(name: str) -> float | None:
    """The container's memory as its cgroup counts it (what a Kubernetes limit applies to), a second after ready."""
    time.sleep(1)
    stats = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", name, check=False, timeout=30)
    return parse_docker_memory(stats.stdout) if stats.returncode == 0 else None


def wordcount(mb: float, tmp: Path, profile: bool, log: Callable[[str], None]) -> tuple[dict[str, Any], list[Any]]:
    passes = 3
    found: dict[str, Any] = {"passes": passes}
    for key, size, share in (("ascii", mb, 0.0), ("unicode", mb / 4, 0.01)):
        out = tmp / f"wordcount-{key}.json"
        cmd = [sys.executable, "-m", "bench.wordcount", f"--mb={size}", f"--passes={passes}", f"--json={out}"]
        subprocess.run([*cmd, f"--unicode-share={share}"], cwd=ROOT, check=True, timeout=300, capture_output=True)
        found[key] = json.loads(out.read_text())
    ratio = report.wordcount_ratio(found)
    if ratio:
        log(f"word count: {ratio[1]:.1f} MB/s vs wc -w {ratio[2]:.1f} MB/s = {ratio[0]:.2f} of it")
    profiles = []
    if profile and profiling.available():
        text = tmp / "wordcount-profile.txt"
        text.write_bytes(generate_text(int(mb * 2**20)))
        for title, path in (("word count, ASCII prose", text),):
            out = tmp / "wordcount-spy.txt"
            cmd = [sys.executable, "-m", "bench.wordcount", f"--file={path}", "--passes=2", "--python-only"]
            profiling.record_command(cmd, out, timeout=300)
            summary = profiling.summarise(
                f"{title} — behind the word-count goal",
                profiling.parse_collapsed(out.read_text()),
                note="The service's pipeline over 16 KiB chunks, as `POST /api/v1/wordcount` runs it.",
            )
            profiles.append(asdict(summary))
    return found, profiles


IMPORT_LAYERS = (
    "gunicorn.app.wsgiapp",
    "flask",
    "pydantic",
    "flask_openapi3",
    "prometheus_client",
    "prometheus_flask_exporter",
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "service.tracing_http",
    "regex",
    "service.app",
)
_IMPORT_MEMORY_SCRIPT = """
import importlib, json, sys
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6
rows, last = [], rss()
rows.append(["python itself", last, last])
for name in sys.argv[1:]:
    importlib.import_module(name)
    now = rss()
    rows.append([name, now - last, now])
    last = now
print(json.dumps(rows))
"""


def import_costs() -> tuple[list[tuple[str, float]], list[Any]]:
    """Start-up profile: import time by package, and resident memory added by each layer of imports."""
    modules = "import gunicorn.app.wsgiapp, gunicorn.workers.gthread, service.app"
    timing = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", modules], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    costs = profiling.import_cost_by_package(profiling.parse_importtime(timing.stderr))
    memory = subprocess.run(
        [sys.executable, "-c", _IMPORT_MEMORY_SCRIPT, *IMPORT_LAYERS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return costs, json.loads(memory.stdout)


# ---- the whole run ------------------------------------------------------------------------------------------------


def execute(plan: Plan, tmp: Path, wordcount_too: bool = True, container_too: bool = True) -> dict[str, Any]:
    started = time.monotonic()
    settings = plan.settings
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "settings": {
            "load": (
                f"wrk, {settings.threads} threads, {settings.connections} connections, "
                f"{settings.warmup_s:.0f} s warm-up + {settings.duration_s:.0f} s per round, keep-alive, 127.0.0.1"
            ),
            "rounds": plan.rounds,
            "bodies": "generated English-like prose, text/plain, 1 KiB and 100 KiB, default query (top 10)",
            "svc_on": "python -m service (gthread, 4 threads): metrics, JSON access log (LOG_LEVEL=info), "
            "OTLP/HTTP tracing at 100 % (always_on) to a loopback sink",
            "svc_sampled": "the same with OTEL_TRACES_SAMPLER=parentbased_traceidratio at 0.1 (the chart's default)",
            "svc_default": "the same with tracing off: what the image runs unless told otherwise",
            "svc_off": "FLASK_SVC_METRICS=false, LOG_LEVEL=warning (no access log), tracing off",
            "bare": f"gunicorn {' '.join(targets.GUNICORN_FLAGS)}, no access log, bench/apps/bare_flask.py",
            "fastapi": "uvicorn (uvloop, httptools), no access log, bench/apps/fastapi_app.py",
            "nginx": "return 200 from a location block, access log off, worker_processes = workers",
        },
        "runs": [],
        "memory": [],
        "profiles": [],
        "tracing": {"spans_received": 0, "spans_dropped": 0},
    }
    with otlp_receiver() as sink:
        measure_matrix(plan, results, tmp, sink)
    # The phases after the matrix are independent: one that fails is recorded and the run still writes its files.
    phases: list[tuple[str, bool, Callable[[], None]]] = [
        ("startup", bool(plan.starts), lambda: results.update(startup=measure_starts(plan.starts, plan.log))),
        ("container", container_too, lambda: results.update(container=container(plan.container_starts, plan.log))),
        ("wordcount", wordcount_too, lambda: _wordcount_phase(plan, results, tmp)),
        ("imports", plan.profiles and plan.extras, lambda: _imports_phase(results)),
        ("slow-clients", plan.extras, lambda: results.update(slow_clients=slowclients.run(plan.log))),
        ("batch", plan.extras, lambda: results.update(batch=batch.run(plan.log))),
    ]
    for name, wanted, phase in phases:
        if not wanted:
            continue
        try:
            phase()
        except (OSError, RuntimeError, TimeoutError, subprocess.SubprocessError, ValueError) as error:
            plan.log(f"{name} phase failed: {error}")
            results.setdefault("failures", []).append(f"{name}: {error}")
    results["machine"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["elapsed_s"] = time.monotonic() - started
    return results


def _wordcount_phase(plan: Plan, results: dict[str, Any], tmp: Path) -> None:
    results["wordcount"], profiles = wordcount(plan.wordcount_mb, tmp, plan.profiles, plan.log)
    results["profiles"] += profiles


def _imports_phase(results: dict[str, Any]) -> None:
    results["import_costs"], results["import_memory"] = import_costs()


def write(results: dict[str, Any], out_dir: Path, plot: bool = True) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    date = results["date"]
    (out_dir / f"{date}.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = out_dir / f"{date}.md"
    markdown.write_text(report.render_markdown(results))
    (out_dir / "latest.md").write_text(report.render_latest(results))
    if plot and not targets.missing("fastapi"):  # matplotlib lives in the bench venv
        plot_args = [str(out_dir / f"{date}.json"), str(out_dir / f"{date}.png")]
        subprocess.run([str(targets.BENCH_PYTHON), "-m", "bench.plot", *plot_args], cwd=ROOT, check=True, timeout=120)
    return markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="flask-svc benchmarks (issue 7)")
    wrk.LoadSettings.add_arguments(parser, duration=2, warmup=1)
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument("--targets", default=",".join(ALL_TARGETS))
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="scenarios to run, comma-separated")
    parser.add_argument(
        "--matrix-only",
        action="store_true",
        help="only the load matrix (and its profiles): no starts, container, word count, imports or slow clients",
    )
    parser.add_argument("--starts", type=int, default=10, help="starts for the start → ready median")
    parser.add_argument("--container-starts", type=int, default=5)
    parser.add_argument("--wordcount-mb", type=float, default=16)
    parser.add_argument("--no-profiles", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render", type=Path, help="only re-render the Markdown and plot from this results JSON")
    args = parser.parse_args(argv)
    if args.render:
        write(json.loads(args.render.read_text()), args.out)
        return 0
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: run `make setup-bench-full`")
    plan = Plan(
        settings=wrk.LoadSettings.from_args(args),
        workers=tuple(int(w) for w in args.workers.split(",")),
        targets=tuple(args.targets.split(",")),
        endpoints=tuple(args.endpoints.split(",")),
        rounds=args.rounds,
        starts=0 if args.matrix_only else args.starts,
        container_starts=args.container_starts,
        wordcount_mb=args.wordcount_mb,
        profiles=not args.no_profiles,
        extras=not args.matrix_only,
        log=report.log,
    )
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
