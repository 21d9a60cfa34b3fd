"""A small HTTP load generator, bounded in request count and in time.

Standard library only: the e2e suite also ships this file's source into a Job that runs it with the
flask-svc image's own interpreter (`python -c <source> --url ...`), so that load reaches the Service the
way in-cluster clients do. The last line it prints is the JSON summary (`LoadResult.to_json`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# A request returns the HTTP status it got, or raises for a transport failure (refused, reset, timeout).
Request = Callable[[], int]


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies in seconds; 0.0 when nothing was sent."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
        return ordered[rank - 1]

    def to_json(self) -> str:
        return json.dumps(
            {
                "sent": self.sent,
                "ok": self.ok,
                "failed": self.failed,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "errors": dict(self.errors),
                "elapsed": round(self.elapsed, 3),
                "p50": round(self.percentile(50), 4),
                "p99": round(self.percentile(99), 4),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> LoadResult:
        data = json.loads(text)
        return cls(
            sent=data["sent"],
            ok=data["ok"],
            failed=data["failed"],
            statuses=Counter({int(k): v for k, v in data["statuses"].items()}),
            errors=Counter(data["errors"]),
            elapsed=data["elapsed"],
        )


def is_success(status: int) -> bool:
    return 200 <= status < 400


def run_load(
    request: Request,
    *,
    max_requests: int,
    max_seconds: float,
    concurrency: int = 4,
    stop: threading.Event | None = None,
    success: Callable[[int], bool] = is_success,
    clock: Callable[[], float] = time.monotonic,
) -> LoadResult:
    """Call `request` from `concurrency` threads until `max_requests` were started, `max_seconds` passed
    or `stop` is set, whichever comes first. Every started request is counted exactly once."""
    if max_requests < 0 or max_seconds < 0 or concurrency < 1:
        raise ValueError("max_requests and max_seconds must be >= 0 and concurrency >= 1")
    stop = stop or threading.Event()
    result = LoadResult()
    lock = threading.Lock()
    started = clock()
    deadline = started + max_seconds

    def claim() -> bool:
        # Claim a slot under the lock so the count bound is exact across threads.
        with lock:
            if stop.is_set() or result.sent >= max_requests or clock() >= deadline:
                return False
            result.sent += 1
            return True

    def worker() -> None:
        while claim():
            t0 = clock()
            try:
                status = request()
            except Exception as exc:  # a transport failure is a failed request, not a crash
                with lock:
                    result.failed += 1
                    result.errors[type(exc).__name__] += 1
                    result.latencies.append(clock() - t0)
                continue
            with lock:
                result.statuses[status] += 1
                result.latencies.append(clock() - t0)
                if success(status):
                    result.ok += 1
                else:
                    result.failed += 1

    threads = [threading.Thread(target=worker, name=f"load-{i}", daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.elapsed = clock() - started
    return result


def http_request(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str = "text/plain",
    timeout: float = 10.0,
) -> Request:
    """A Request that opens a fresh connection per call (so every request can land on another pod)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs with a host are supported, got {url!r}")
    host, port = parts.hostname, parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    headers = {"Connection": "close"}
    if body is not None:
        headers["Content-Type"] = content_type

    def call() -> int:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    return call


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bounded HTTP load; prints a JSON summary as its last line")
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default=None, help="request body (text/plain)")
    parser.add_argument("--requests", type=int, default=100_000, help="upper bound on requests sent")
    parser.add_argument("--seconds", type=float, default=60.0, help="upper bound on run time")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout")
    args = parser.parse_args(argv)
    request = http_request(
        args.url,
        method=args.method,
        body=None if args.body is None else args.body.encode(),
        timeout=args.timeout,
    )
    result = run_load(request, max_requests=args.requests, max_seconds=args.seconds, concurrency=args.concurrency)
    print(result.to_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
