"""Idle and slow clients (issue 11), ``python -m bench.slowclients`` or a phase of `make bench`: while hundreds of
connections send nothing and a handful send half a head, does a server still answer `/livez` and a small analyze
on fresh connections within the probe timeout, and when does it close the slow ones? flask-svc, gunicorn's stock
gthread worker (bare Flask) and FastAPI on uvicorn, one after another, one worker each."""

from __future__ import annotations

import contextlib
import http.client
import selectors
import socket
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench import report, targets
from bench.report import TARGET_LABELS
from service.names import ANALYZE_PATH, LIVEZ

IDLE, SLOW = 300, 8
ROUNDS = 10  # probe + analyze pairs
ANSWER_TIMEOUT = 2.0  # the client gives up here (the chart's probe timeout)
WITHIN = 1.0  # what issue 11 asks of every answer
WATCH_SECONDS = 20.0  # how long the slow connections are watched for the server closing them
SLOW_HEAD = f"POST {ANALYZE_PATH} HTTP/1.1\r\nHost: x\r\n".encode()
BODY = b"one two two three three three"
LABELS = {**TARGET_LABELS, "bare": "gunicorn gthread, stock (bare Flask)"}


def timed_request(port: int, method: str, path: str, body: bytes | None) -> float | None:
    """Seconds until a 2xx arrived on a fresh connection; None on a timeout, an error or another status."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "text/plain"} if body else {})
        response = conn.getresponse()
        response.read()
        return time.monotonic() - started if 200 <= response.status < 300 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def seconds_until_closed(sockets: Sequence[socket.socket], opened: float, limit: float) -> list[float | None]:
    """For each socket, when the server sent something or closed it (seconds after ``opened``); None past ``limit``."""
    closed: list[float | None] = [None] * len(sockets)
    with selectors.DefaultSelector() as selector:
        for index, sock in enumerate(sockets):
            selector.register(sock, selectors.EVENT_READ, index)
        while selector.get_map() and time.monotonic() - opened < limit:
            for key, _ in selector.select(timeout=0.2):
                closed[key.data] = time.monotonic() - opened
                selector.unregister(key.fileobj)
    return closed


def measure(target: targets.Target) -> dict[str, Any]:
    """IDLE silent connections and SLOW half-sent heads held open while ROUNDS probe + analyze pairs are timed."""
    with contextlib.ExitStack() as stack:
        opened = time.monotonic()
        connect = lambda: stack.enter_context(socket.create_connection(("127.0.0.1", target.port), timeout=5))  # noqa: E731
        for _ in range(IDLE):
            connect()
        slow = [connect() for _ in range(SLOW)]
        for sock in slow:
            sock.sendall(SLOW_HEAD)
        time.sleep(0.5)  # every held connection has reached the server
        answers = []
        for _ in range(ROUNDS):
            answers.append(timed_request(target.port, "GET", LIVEZ, None))
            answers.append(timed_request(target.port, "POST", ANALYZE_PATH, BODY))
        closed = seconds_until_closed(slow, opened, WATCH_SECONDS)
    times, cut = [a for a in answers if a is not None], [c for c in closed if c is not None]
    return {"key": target.key, "label": LABELS[target.key], "requests": len(answers),
            "within_1s": sum(t <= WITHIN for t in times), "within_2s": len(times),
            "median_ms": statistics.median(times) * 1000 if times else None,
            "max_ms": max(times) * 1000 if times else None, "slow_closed": len(cut),
            "slow_closed_after_s": statistics.median(cut) if cut else None}  # fmt: skip


def run(log: Callable[[str], None]) -> dict[str, Any]:
    rows = []
    for key in ("svc-default", "bare", "fastapi"):
        with targets.start(key, 1) as target:
            log(f"slow clients: {TARGET_LABELS[key]}")
            rows.append(measure(target))
    return {"idle": IDLE, "slow": SLOW, "watch_s": WATCH_SECONDS, "rows": rows}


def render(result: Mapping[str, Any]) -> str:
    return report.render_table("slow_clients", result, ROUNDS, ANSWER_TIMEOUT)


def main(argv: list[str] | None = None) -> int:
    args = report.cli(__doc__).parse_args(argv)
    return report.emit(run(report.log), "slow_clients", args.json, ROUNDS, ANSWER_TIMEOUT)


if __name__ == "__main__":
    sys.exit(main())
