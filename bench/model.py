"""Model serving side by side: flask-svc and Seldon MLServer serving the same skops file over the Open Inference
Protocol (V2), one worker each, driven by wrk with 1-instance and 64-instance requests.

    .venv/bin/python -m bench.model            # part of `make bench`; about 1 minute
    .venv/bin/python -m bench.model --help

MLServer runs from .tools/mlserver-venv (bench/mlserver/requirements.lock), with the skops runtime in
bench/mlserver/skops_runtime.py and `parallel_workers: 0`, so inference runs in its one process as flask-svc's runs in
its one worker. Both answer on 127.0.0.1 only. The goal (flask-svc at or above MLServer's 1-instance throughput) is
reported, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import requests

from bench import targets, wrk
from harness.net import free_port
from harness.server import ROOT, running_server

MLSERVER_VENV = ROOT / ".tools" / "mlserver-venv"
RESULTS = ROOT / "bench" / "results"
BATCHES = (1, 64)
MODEL = "iris"
SERVERS = {"flask-svc": "flask-svc (gunicorn gthread, 1 worker, 4 threads)", "mlserver": "MLServer (1 process)"}


def iris_rows(count: int) -> list[list[float]]:
    from sklearn.datasets import load_iris

    features = load_iris().data
    return [list(map(float, features[i % len(features)])) for i in range(count)]


def v2_body(count: int) -> dict[str, Any]:
    rows = iris_rows(count)
    return {"inputs": [{"name": "input-0", "shape": [count, 4], "datatype": "FP64", "data": rows}]}


@contextmanager
def flask_svc(model: Path) -> Iterator[str]:
    env = {"FLASK_SVC_MODEL_PATH": str(model), "WEB_CONCURRENCY": "1", "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    with running_server(env, log_to_file=True) as server:
        yield server.url


@contextmanager
def mlserver(model: Path) -> Iterator[str]:
    python = MLSERVER_VENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"{python} is missing: `make setup-bench-full` makes the MLServer virtualenv")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="flask-svc-mlserver-") as tmp:
        settings = {
            "debug": False,
            "parallel_workers": 0,
            "host": "127.0.0.1",
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
        }
        model_settings = {
            "name": MODEL,
            "implementation": "bench.mlserver.skops_runtime.SkopsSKLearnModel",
            "parameters": {"uri": str(model)},
        }
        Path(tmp, "settings.json").write_text(json.dumps(settings))
        Path(tmp, "model-settings.json").write_text(json.dumps(model_settings))
        cmd = [str(MLSERVER_VENV / "bin" / "mlserver"), "start", tmp]
        with targets.launched(cmd, port, env={"PYTHONPATH": str(ROOT)}, path="/v2/health/ready"):
            yield f"http://127.0.0.1:{port}"


def same_answers(urls: dict[str, str]) -> list[Any]:
    """Both servers answer the 64-instance request with the same predictions (else the numbers compare nothing)."""
    answers = {}
    for name, url in urls.items():
        response = requests.post(f"{url}/v2/models/{MODEL}/infer", json=v2_body(64), timeout=10)
        response.raise_for_status()
        answers[name] = response.json()["outputs"][0]["data"]
    first, *others = answers.values()
    if any(other != first for other in others):
        raise RuntimeError(f"the servers disagree: {answers}")
    return list(first)


def measure(model: Path, settings: wrk.LoadSettings, rounds: int, log: Any = print) -> dict[str, Any]:
    """Best of `rounds` interleaved wrk runs per server and batch size."""
    results: dict[str, Any] = {"settings": vars(settings) | {"rounds": rounds}, "servers": SERVERS, "rows": []}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="flask-svc-bench-model-") as tmp:
        urls = {"flask-svc": stack.enter_context(flask_svc(model)), "mlserver": stack.enter_context(mlserver(model))}
        results["predictions_64"] = same_answers(urls)
        bodies = {}
        for batch in BATCHES:
            bodies[batch] = Path(tmp, f"v2-{batch}.json")
            bodies[batch].write_text(json.dumps(v2_body(batch)))
        best: dict[tuple[str, int], wrk.WrkResult] = {}
        for batch in BATCHES:
            for url in urls.values():  # warm-up
                wrk.run(
                    f"{url}/v2/models/{MODEL}/infer", settings, bodies[batch], settings.warmup_s, "application/json"
                )
            for round_ in range(rounds):
                for name, url in urls.items():
                    result = wrk.run(
                        f"{url}/v2/models/{MODEL}/infer", settings, bodies[batch], None, "application/json"
                    )
                    if result.error_count:
                        raise RuntimeError(f"{name}, {batch} instances: wrk counted errors {result.errors}")
                    log(f"{name:9} {batch:3} instances, round {round_ + 1}: {result.rps:8.0f} req/s")
                    if (name, batch) not in best or result.rps > best[(name, batch)].rps:
                        best[(name, batch)] = result
        for (name, batch), result in best.items():
            results["rows"].append(
                {
                    "server": name,
                    "instances": batch,
                    "rps": round(result.rps, 1),
                    "instances_per_s": round(result.rps * batch, 1),
                    "p50_ms": result.latency_ms["p50"],
                    "p99_ms": result.latency_ms["p99"],
                }
            )
    results["goal"] = goal(results["rows"])
    return results


def goal(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """flask-svc's 1-instance throughput against MLServer's: the issue's goal, reported, not asserted."""
    one = {row["server"]: row["rps"] for row in rows if row["instances"] == 1}
    return {"met": one["flask-svc"] >= one["mlserver"], "ratio": round(one["flask-svc"] / one["mlserver"], 2)}


def markdown(results: dict[str, Any]) -> str:
    settings = results["settings"]
    lines = [
        "# Model serving: flask-svc beside Seldon MLServer",
        "",
        f"The same skops file (the Iris model), Open Inference Protocol V2 over HTTP, one worker each; wrk with "
        f"{settings['connections']} connections, {settings['threads']} threads, best of {settings['rounds']} "
        f"interleaved {settings['duration_s']:g} s rounds.",
        "",
        "| server | instances per request | requests/s | instances/s | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in sorted(results["rows"], key=lambda r: (r["instances"], r["server"])):
        lines.append(
            f"| {results['servers'][row['server']]} | {row['instances']} | {row['rps']:.0f} | "
            f"{row['instances_per_s']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |"
        )
    outcome = results["goal"]
    verdict = "met" if outcome["met"] else "not met"
    lines += [
        "",
        f"Goal, flask-svc at or above MLServer's 1-instance throughput: **{verdict}** (ratio {outcome['ratio']}).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="model serving: flask-svc beside MLServer")
    parser.add_argument("--duration", type=float, default=3, help="seconds per measured round")
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    opts = parser.parse_args(argv)
    settings = wrk.LoadSettings(
        duration_s=opts.duration, warmup_s=opts.warmup, connections=opts.connections, threads=opts.threads
    )
    from service.inference.train import main as train

    with tempfile.TemporaryDirectory(prefix="flask-svc-bench-model-") as tmp:
        model = Path(tmp, "iris.skops")
        train([str(model)])
        results = measure(model, settings, opts.rounds)
    results["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    opts.out.mkdir(parents=True, exist_ok=True)
    stem = f"model-{results['date'][:10]}"
    (opts.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (opts.out / f"{stem}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
