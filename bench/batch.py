"""Batch analysis end to end beside the synchronous endpoint (issues 13 and 22), through `python -m service` with the
local runner: `python -m bench.batch` (8 MiB synchronous; a 64 MiB job in 16 MiB shards at P=1, P=2) or `--peaks 1024`
(one 1 GiB job at P=2: each process's peak memory, VmHWM). A job is timed from upload to `succeeded` (polled every
50 ms), every stage process's start included. MiB per CPU-second charges both sides alike: the server's whole process
tree (gunicorn master and workers, the metrics server, the stage host and every stage it forks — map driver, shards,
merge), never this client, which sends the body and polls; the batch side also pays for the polls it answers. Each
row carries the load average before and after it: on a shared machine the MiB/s columns measure the neighbours."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

from bench import report
from harness.corpus import MIB, generate_text
from harness.proc import peak_kib, tree_cpu_seconds
from harness.server import running_server
from service.names import API_PREFIX, JOBS_PATH, WORDCOUNT

PASSES = 3
TEXT = {"Content-Type": "text/plain"}


def _batch(url: str, body: bytes) -> None:
    response = requests.post(f"{url}{JOBS_PATH}", data=body, headers=TEXT, timeout=600)
    response.raise_for_status()
    while (state := requests.get(f"{url}{response.headers['Location']}", timeout=30).json()["state"]) != "succeeded":
        if state in ("failed", "cancelled"):
            raise RuntimeError(f"batch job ended {state}")
        time.sleep(0.05)


def _sync(url: str, body: bytes) -> None:
    requests.post(f"{url}{API_PREFIX}/{WORDCOUNT}?limit=10", data=body, headers=TEXT, timeout=600).raise_for_status()


def _local_runner_env(data: str, parallelism: int, shard_mib: int) -> dict[str, str]:
    return {"FLASK_SVC_BATCH_DATA_DIR": data, "FLASK_SVC_BATCH_RECONCILE_SECONDS": "1",
            "FLASK_SVC_BATCH_PARALLELISM": str(parallelism), "FLASK_SVC_BATCH_SHARD_BYTES": str(shard_mib * MIB),
            "FLASK_SVC_MAX_VOCABULARY": "1000000", "LOG_LEVEL": "warning"}  # fmt: skip


def run(log: Callable[[str], None], size_mib: int = 64, sync_mib: int = 8, shard_mib: int = 16, passes: int = PASSES
        ) -> dict[str, Any]:  # fmt: skip
    """The synchronous endpoint (``sync_mib``, under its 10 MiB limit), then the same job at P=1 and P=2, one service
    each, in one run so the ratios share the machine's state. Each row: the best pass and the CPU of that pass."""
    rows = []
    sync_body, body = generate_text(sync_mib * MIB, seed=13), generate_text(size_mib * MIB, seed=17)
    for parallelism in (1, 2):
        with (
            tempfile.TemporaryDirectory(prefix="flask-svc-bench-batch-") as data,
            running_server(_local_runner_env(data, parallelism, shard_mib), log_to_file=True) as server,
        ):
            cpu = lambda: tree_cpu_seconds(server.process.pid)  # noqa: E731
            if parallelism == 1:
                _sync(server.url, sync_body[: MIB // 4])  # first-use costs out of the way
                load = os.getloadavg()[0]
                seconds, cpu_s = min(
                    p[:2] for p in report.timed_passes(passes, lambda: _sync(server.url, sync_body), cpu)
                )
                rows.append({"what": f"POST /api/v1/wordcount, {sync_mib} MiB", "bytes": len(sync_body),
                             "seconds": seconds, "cpu": cpu_s, "load": [load, os.getloadavg()[0]]})  # fmt: skip
            load = os.getloadavg()[0]
            seconds, cpu_s = min(p[:2] for p in report.timed_passes(passes, lambda: _batch(server.url, body), cpu))
            what = f"POST /api/v1/jobs → succeeded, {size_mib} MiB, {shard_mib} MiB shards, P={parallelism}"
            rows.append({"what": what, "bytes": len(body), "seconds": seconds, "cpu": cpu_s,
                         "load": [load, os.getloadavg()[0]]})  # fmt: skip
    for row in rows:
        row["mib_per_s"] = row["bytes"] / MIB / row["seconds"]
        row["mib_per_cpu_s"] = row["bytes"] / MIB / row["cpu"] if row["cpu"] > 0 else float("nan")
        log(f"batch bench: {row['what']}: {row['seconds']:.2f} s, {row['cpu']:.2f} CPU-s, load average"
            f" {row['load'][0]:.1f} -> {row['load'][1]:.1f}")  # fmt: skip
    return {"passes": passes, "rows": rows}


def _role(process: psutil.Process, master: int) -> str:
    """What a process of the server's tree is: a stage forked by the stage host keeps the host's command line, so
    its name (``batch-map``, ``batch-shard-N``, ``batch-merge``: ``local.name_process``) says which it is."""
    if process.pid == master:
        return "gunicorn master"
    name, command = process.name(), " ".join(process.cmdline())
    if name.startswith("batch-"):
        parent = process.parent()
        if name == "batch-map" and parent is not None and parent.name() != "batch-map":  # else a shard, not yet named
            return "map driver"
        return "merge" if name == "batch-merge" else "map shard"
    if "service.batch.forkhost" in command:
        return "stage host"
    return "metrics server" if "metrics_server" in command else "gunicorn worker"


def _sample_peaks(master: int, peaks: dict[int, tuple[str, int]], stop: threading.Event) -> None:
    """Every process's VmHWM (the kernel's high-water mark, so a sample misses nothing but the last moments of a
    process that exits between two samples), by pid, while the job runs."""
    while not stop.is_set():
        tree = psutil.Process(master)
        for process in [tree, *tree.children(recursive=True)]:
            try:
                role = peaks[process.pid][0] if process.pid in peaks else _role(process, master)
                peaks[process.pid] = (role, max(peaks.get(process.pid, (role, 0))[1], peak_kib(process.pid)))
            except (psutil.Error, OSError, ValueError):  # exited, or a zombie with no memory left
                continue
        stop.wait(0.05)


def run_peaks(log: Callable[[str], None], size_mib: int = 1024, shard_mib: int = 16, parallelism: int = 2
              ) -> dict[str, Any]:  # fmt: skip
    """One ``size_mib`` job through the local runner, and the peak resident set of each process that took part:
    sampled VmHWM for the long-lived ones (gunicorn master and workers, the map driver), and each stage process's
    own ``peak_rss_kib`` from its outcome file (its getrusage high-water mark at the end: exact even for a shard too
    short to be sampled)."""
    body = generate_text(size_mib * MIB, seed=19)
    with tempfile.TemporaryDirectory(prefix="flask-svc-bench-batch-") as data:
        env = _local_runner_env(data, parallelism, shard_mib)
        env["FLASK_SVC_BATCH_MAX_UPLOAD_BYTES"] = str(max(len(body), 1 << 30))
        with running_server(env, log_to_file=True) as server:
            sampled: dict[int, tuple[str, int]] = {}
            stop = threading.Event()
            sampler = threading.Thread(target=_sample_peaks, args=(server.process.pid, sampled, stop), daemon=True)
            sampler.start()
            try:
                ((seconds, _, _),) = report.timed_passes(1, lambda: _batch(server.url, body))
            finally:
                stop.set()
                sampler.join()
            job = next(path.parent for path in Path(data).glob("*/merge.json"))
            outcomes = {path.name: json.loads(path.read_text()) for path in job.glob("*.json") if path.stem != "job"}
    peaks: dict[str, list[int]] = {}
    for role, kib in sampled.values():
        if role not in ("map shard", "merge"):  # those from their outcome files below
            peaks.setdefault(role, []).append(kib)
    for name, outcome in sorted(outcomes.items()):
        if "peak_rss_kib" in outcome:
            peaks.setdefault("merge" if name.startswith("merge") else "map shard", []).append(outcome["peak_rss_kib"])
    log(f"batch bench: {size_mib} MiB at P={parallelism}: {seconds:.1f} s")
    return {"mib": size_mib, "shard_mib": shard_mib, "parallelism": parallelism, "seconds": seconds, "peaks": peaks}


def render_peaks(result: dict[str, Any]) -> str:
    return report.render_table("peaks", result)


def main(argv: list[str] | None = None) -> int:
    parser = report.cli(__doc__)
    parser.add_argument("--mib", type=int, default=64, help="the batch job's size")
    parser.add_argument("--shard-mib", type=int, default=16, help="FLASK_SVC_BATCH_SHARD_BYTES, in MiB")
    parser.add_argument("--passes", type=int, default=PASSES)
    peaks = "instead: one job of this size at P=2, each process's peak memory"
    parser.add_argument("--peaks", type=int, metavar="MIB", help=peaks)
    args = parser.parse_args(argv)
    if args.peaks:
        return report.emit(run_peaks(report.log, args.peaks, shard_mib=args.shard_mib), "peaks", args.json)
    return report.emit(run(report.log, args.mib, shard_mib=args.shard_mib, passes=args.passes), "batch", args.json)


if __name__ == "__main__":
    sys.exit(main())
