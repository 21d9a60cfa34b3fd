"""Batch analysis throughput end to end beside the synchronous endpoint (issue 13).

    .venv/bin/python -m bench.batch              # 8 MiB and 64 MiB jobs, 8 MiB synchronous, best of 3 each

One service (`python -m service`, the local runner: each stage a fresh `python -m service.batch` process) on a
temporary data directory. A batch measure is upload → `202` → polling `GET /api/v1/jobs/{id}` every 50 ms until
`succeeded`: it includes both stage processes' start (interpreter, imports) and the files written in between. The
synchronous one is `POST /api/v1/wordcount` of the same text (bounded by its 10 MiB limit).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import requests

from bench.corpus import generate_text
from harness.server import running_server

MIB = 1024 * 1024
PASSES = 3
POLL_SECONDS = 0.05


def _batch_seconds(url: str, body: bytes) -> float:
    started = time.perf_counter()
    response = requests.post(f"{url}/api/v1/jobs", data=body, headers={"Content-Type": "text/plain"}, timeout=600)
    response.raise_for_status()
    job_url = f"{url}{response.headers['Location']}"
    while True:
        state = requests.get(job_url, timeout=30).json()["state"]
        if state == "succeeded":
            return time.perf_counter() - started
        if state in ("failed", "cancelled"):
            raise RuntimeError(f"batch job ended {state}")
        time.sleep(POLL_SECONDS)


def _sync_seconds(url: str, body: bytes) -> float:
    started = time.perf_counter()
    response = requests.post(
        f"{url}/api/v1/wordcount?limit=10", data=body, headers={"Content-Type": "text/plain"}, timeout=600
    )
    response.raise_for_status()
    return time.perf_counter() - started


def _best(passes: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(passes))


def run(log: Callable[[str], None], sizes_mib: tuple[int, ...] = (8, 64), sync_mib: int = 8) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="flask-svc-bench-batch-") as data:
        env = {"FLASK_SVC_BATCH_DATA_DIR": data, "FLASK_SVC_BATCH_RECONCILE_SECONDS": "1", "LOG_LEVEL": "warning"}
        with running_server(env, log_to_file=True) as server:
            body = generate_text(sync_mib * MIB, seed=13)
            _sync_seconds(server.url, body[: MIB // 4])  # first-use costs out of the way
            seconds = _best(PASSES, lambda: _sync_seconds(server.url, body))
            rows.append({"what": f"POST /api/v1/wordcount, {sync_mib} MiB", "bytes": len(body), "seconds": seconds})
            log(f"batch bench: synchronous {len(body) / MIB / seconds:.1f} MiB/s")
            for size in sizes_mib:
                body = generate_text(size * MIB, seed=17)
                seconds = _best(PASSES, lambda body=body: _batch_seconds(server.url, body))
                rows.append(
                    {"what": f"POST /api/v1/jobs → succeeded, {size} MiB", "bytes": len(body), "seconds": seconds}
                )
                log(f"batch bench: {size} MiB job {len(body) / MIB / seconds:.1f} MiB/s end to end")
    for row in rows:
        row["mib_per_s"] = row["bytes"] / MIB / row["seconds"]
    return {"passes": PASSES, "rows": rows}


def render(batch: dict[str, Any]) -> str:
    sync = batch["rows"][0]["mib_per_s"]
    lines = ["| what | MiB | best of 3 (s) | MiB/s | vs synchronous |", "|---|---|---|---|---|"]
    for row in batch["rows"]:
        lines.append(
            f"| {row['what']} | {row['bytes'] / MIB:.0f} | {row['seconds']:.2f} | {row['mib_per_s']:.1f} | "
            f"{row['mib_per_s'] / sync:.2f}× |"  # noqa: RUF001 — the multiplication sign
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    results = run(lambda message: print(message, file=sys.stderr))
    print(render(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
