"""Model serving side by side (``python -m bench.model [--without-mlserver]``, part of `make bench`): flask-svc and
Seldon MLServer (.tools/mlserver-venv, bench/mlserver/skops_runtime.py, `parallel_workers: 0`: inference in its one
process, as in flask-svc's one worker) serve the same skops file over the Open Inference Protocol V2 under wrk, with 1-,
64- and 1024-instance requests, JSON for both and the binary tensor extension for flask-svc.

Both are up at once and each round runs flask-svc JSON, flask-svc binary and MLServer JSON back to back
(`round_order`). The goal is the median of the per-round ratios of requests per CPU-second: within a round both sides
meet the same background load, so each round's ratio cancels most of it, while two medians taken apart may pair
rounds a minute apart. Reported, never asserted."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import requests

from bench import report, wrk
from harness import proc
from harness.models import write_iris
from harness.net import free_port
from harness.server import ROOT, Server, launched, running_server

MLSERVER = ROOT / ".tools" / "mlserver-venv" / "bin"
BATCHES, FORMS, MODEL = (1, 64, 1024), ("json", "binary"), "iris"
INFER = f"/v2/models/{MODEL}/infer"
SERVERS = {"flask-svc": "flask-svc (gunicorn gthread, 1 worker, 4 threads)", "mlserver": "MLServer (1 process)"}


def iris_rows(count: int) -> list[list[float]]:
    from sklearn.datasets import load_iris

    features = load_iris().data
    return [list(map(float, features[i % len(features)])) for i in range(count)]


def v2_body(count: int) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": [count, 4], "datatype": "FP64", "data": iris_rows(count)}]}


def v2_binary_body(count: int) -> tuple[bytes, int]:
    """The binary extension's request (FP64 rows after the JSON header, the answer asked in binary) and its header's
    length, the ``Inference-Header-Content-Length`` to send."""
    import numpy as np

    raw = np.array(iris_rows(count), dtype="<f8").tobytes()
    tensor = {"name": "input-0", "shape": [count, 4], "datatype": "FP64", "parameters": {"binary_data_size": len(raw)}}
    header = json.dumps({"inputs": [tensor], "parameters": {"binary_data_output": True}}).encode()
    return header + raw, len(header)


def flask_svc(model: Path) -> Any:
    env = {"FLASK_SVC_MODEL_PATH": str(model), "WEB_CONCURRENCY": "1", "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    return running_server(env, log_to_file=True)


@contextmanager
def mlserver(model: Path) -> Iterator[tuple[str, int]]:
    """MLServer's URL and its process id (the root of the tree whose CPU is counted)."""
    if not (MLSERVER / "python").exists():
        raise RuntimeError(f"{MLSERVER / 'python'} is missing: `make setup-bench-full` makes the MLServer virtualenv")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="flask-svc-mlserver-") as tmp:
        ports = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
        settings = {"debug": False, "parallel_workers": 0, "host": "127.0.0.1", **ports}
        runtime = "bench.mlserver.skops_runtime.SkopsSKLearnModel"
        Path(tmp, "settings.json").write_text(json.dumps(settings))
        Path(tmp, "model-settings.json").write_text(
            json.dumps({"name": MODEL, "implementation": runtime, "parameters": {"uri": str(model)}})
        )
        cmd, env = [str(MLSERVER / "mlserver"), "start", tmp], {"PYTHONPATH": str(ROOT)}
        with launched(cmd, port, env, path="/v2/health/ready") as process:
            yield f"http://127.0.0.1:{port}", process.pid


def same_answers(urls: dict[str, str]) -> list[Any]:
    """Both servers answer the 64-instance request with the same predictions (else the numbers compare nothing)."""
    answers = {}
    for name, url in urls.items():
        response = requests.post(f"{url}{INFER}", json=v2_body(64), timeout=10)
        response.raise_for_status()
        answers[name] = response.json()["outputs"][0]["data"]
    first, *others = answers.values()
    if any(other != first for other in others):
        raise RuntimeError(f"the servers disagree: {answers}")
    return list(first)


def round_order(mlserver_too: bool = True) -> list[tuple[str, str]]:
    """What one round runs, in order: flask-svc JSON, flask-svc binary, MLServer JSON (the goal's sides adjacent)."""
    return [("flask-svc", form) for form in FORMS] + ([("mlserver", "json")] if mlserver_too else [])


def measure(model: Path, settings: wrk.LoadSettings, rounds: int, log: Any = print, mlserver_too: bool = True
            ) -> dict[str, Any]:  # fmt: skip
    """For each request size, `rounds` rounds of `round_order`: the best round's requests per second, the median
    round's requests per CPU-second, and flask-svc's worker's peak memory over its runs of each size and form."""
    results: dict[str, Any] = {"settings": vars(settings) | {"rounds": rounds}, "servers": SERVERS, "rows": []}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="flask-svc-bench-model-") as tmp:
        server: Server = stack.enter_context(flask_svc(model))
        (worker,) = server.workers()
        urls, pids = {"flask-svc": server.url}, {"flask-svc": server.process.pid}  # the master's tree holds the worker
        if mlserver_too:
            urls["mlserver"], pids["mlserver"] = stack.enter_context(mlserver(model))
        results["predictions_64"] = same_answers(urls)
        order = round_order(mlserver_too)
        for batch in BATCHES:
            raw, length = v2_binary_body(batch)
            bodies = {"json": (Path(tmp, f"v2-{batch}.json"), None), "binary": (Path(tmp, f"v2-{batch}.bin"), length)}
            bodies["json"][0].write_text(json.dumps(v2_body(batch)))
            bodies["binary"][0].write_bytes(raw)
            for name, form in order:  # warm-up
                _infer(urls[name], settings, bodies[form], settings.warmup_s)
            runs: dict[tuple[str, str], list[wrk.WrkResult]] = {key: [] for key in order}
            peaks_kib = dict.fromkeys(FORMS, 0)
            for index in range(rounds):
                for name, form in order:
                    if name == "flask-svc":  # the worker serves both forms: its peak is read run by run
                        proc.reset_peak(worker.pid)
                    got = _infer(urls[name], settings, bodies[form], cpu_of=pids[name])
                    if name == "flask-svc":
                        peaks_kib[form] = max(peaks_kib[form], proc.peak_kib(worker.pid))
                    if got.error_count:
                        raise RuntimeError(f"{name}, {batch} instances {form}: wrk counted errors {got.errors}")
                    per_cpu = report.per_cpu_second(got.requests, got.cpu_s) or 0
                    log(f"{name:9} {batch:4} instances {form:6}, round {index + 1}: {got.rps:8.0f} req/s "
                        f"{per_cpu:8.0f} req/CPU-s")  # fmt: skip
                    runs[name, form].append(got)
            results["rows"] += [
                _row(name, form, batch, got, peaks_kib[form] / 1024) for (name, form), got in runs.items()
            ]
    results["goal"] = goal(results["rows"])
    return results


def _infer(
    url: str,
    settings: wrk.LoadSettings,
    body: tuple[Path, int | None],
    seconds: float | None = None,
    cpu_of: int | None = None,
) -> wrk.WrkResult:
    return wrk.run(f"{url}{INFER}", settings, body[0], seconds, "application/json", body[1], cpu_of)


def _row(name: str, form: str, batch: int, runs: list[wrk.WrkResult], peak_mib: float) -> dict[str, Any]:
    best = max(runs, key=lambda result: result.rps)  # the first of equals
    rounds = [{"requests": r.requests, "cpu_s": round(r.cpu_s or 0, 3), "rps": round(r.rps, 1)} for r in runs]
    per_cpu = report.median_per_cpu(rounds)
    return {"server": name, "form": form, "instances": batch, "rps": round(best.rps, 1),
            "instances_per_s": round(best.rps * batch, 1), "per_cpu_s": None if per_cpu is None else round(per_cpu, 1),
            "p50_ms": best.latency_ms["p50"], "p99_ms": best.latency_ms["p99"],
            "peak_mib": round(peak_mib, 1) if name == "flask-svc" else None, "rounds": rounds}  # fmt: skip


def goal(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """flask-svc's binary 64-instance requests per CPU-second against MLServer's 64-instance JSON (issue 21), the
    requests-per-second ratio beside, each the median of the per-round ratios when both rows carry the same rounds,
    each with its CPU measured (else their figures are compared). None without MLServer."""
    at_64 = {(row["server"], row["form"]): row for row in rows if row["instances"] == 64}
    ours, theirs = at_64.get(("flask-svc", "binary")), at_64.get(("mlserver", "json"))
    if ours is None or theirs is None:
        return None
    pairs = list(zip(ours.get("rounds") or [], theirs.get("rounds") or [], strict=False))
    cpu = [report.ratio(*(report.per_cpu_second(r["requests"], r["cpu_s"]) for r in pair)) for pair in pairs]
    measured = [value for value in cpu if value is not None]
    paired = bool(pairs) and len(ours["rounds"]) == len(theirs["rounds"]) == len(measured)
    if paired:
        per_cpu: float | None = statistics.median(measured)
        rps = statistics.median([a["rps"] / b["rps"] for a, b in pairs])
    else:
        per_cpu, rps = report.ratio(ours.get("per_cpu_s"), theirs.get("per_cpu_s")), ours["rps"] / theirs["rps"]
    judged = {"met": per_cpu is not None and per_cpu >= 1.0, "ratio": None if per_cpu is None else round(per_cpu, 2),
              "rps_ratio": round(rps, 2)}  # fmt: skip
    return judged | ({"round_ratios": [round(value, 2) for value in measured]} if paired else {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="model serving: flask-svc beside MLServer")
    wrk.LoadSettings.add_arguments(parser, duration=3, warmup=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--without-mlserver", action="store_true", help="flask-svc alone (no comparison)")
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flask-svc-bench-model-") as tmp:
        model = write_iris(Path(tmp, "iris.skops"))  # the model the tests serve
        results = measure(model, wrk.LoadSettings.from_args(opts), opts.rounds, mlserver_too=not opts.without_mlserver)
    results["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    opts.out.mkdir(parents=True, exist_ok=True)
    stem = opts.out / f"model-{results['date'][:10]}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    stem.with_suffix(".md").write_text(text := report.render("model", results))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
