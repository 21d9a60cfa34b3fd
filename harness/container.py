"""The image run as the chart runs it (read-only root, no capabilities) on free loopback ports, for the container
tests and the benchmark; and, for the image figures in docs/operations.md (prints JSON: size, container start →
/readyz 200):

    .venv/bin/python -m harness.container measure [--build] [--image flask-svc:test] [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from harness.docker import HARDENED_RUN, docker
from harness.net import free_port, wait_until_ready
from image.build import build_image
from image.docker import engine_problem, image_size

# The tag the container tests build and the benchmark measures.
TEST_IMAGE = "flask-svc:test"


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 — loopback URLs only
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


@dataclass
class Container:
    name: str
    port: int
    metrics_port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def logs(self) -> str:
        proc = docker("logs", "--tail", "60", self.name, check=False, timeout=30)
        return proc.stdout + proc.stderr

    def remove(self) -> None:
        docker("rm", "--force", self.name, check=False, timeout=60)


def run_container(image: str, env: dict[str, str] | None = None, extra: Sequence[str] = ()) -> Container:
    """Start the image hardened like the chart does, on free loopback ports."""
    port, metrics_port = free_port(), free_port()
    while metrics_port == port:
        metrics_port = free_port()
    name = f"flask-svc-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    environment = {"HOST": "127.0.0.1", "PORT": str(port), "METRICS_PORT": str(metrics_port), **(env or {})}
    cmd = ["run", "--detach", f"--name={name}", *HARDENED_RUN, *extra]
    for k, v in environment.items():
        cmd += ["--env", f"{k}={v}"]
    docker(*cmd, image, timeout=60)
    return Container(name, port, metrics_port)


def wait_ready(container: Container, timeout: float = 30, interval: float = 0.01) -> float:
    """Poll /readyz until 200; returns the wall-clock time (time.time()) of the first 200."""
    try:
        wait_until_ready(container.port, timeout=timeout, interval=interval)
    except TimeoutError:
        state = docker("inspect", "--format", "{{.State.Status}} exit={{.State.ExitCode}}", container.name, check=False)
        logs = container.logs()
        raise TimeoutError(f"/readyz not 200 within {timeout} s ({state.stdout.strip()}); logs:\n{logs}") from None
    return time.time()


def _parse_docker_time(value: str) -> float:
    # Docker prints nanoseconds; datetime takes microseconds.
    value = re.sub(r"(\.\d{6})\d*", r"\1", value.strip()).replace("Z", "+00:00")
    return dt.datetime.fromisoformat(value).timestamp()


def measure_start(image: str, interval: float = 0.01) -> dict[str, float]:
    """One cold start: `docker run` → /readyz 200, and the container's own start → /readyz 200."""
    t0 = time.time()
    container = run_container(image)
    try:
        ready = wait_ready(container, interval=interval)
        started_at = docker("inspect", "--format", "{{.State.StartedAt}}", container.name).stdout
        return {"run_to_ready_s": ready - t0, "start_to_ready_s": ready - _parse_docker_time(started_at)}
    finally:
        container.remove()


def measure(image: str, runs: int = 3) -> dict[str, object]:
    starts = [measure_start(image) for _ in range(runs)]
    size = image_size(image)
    ready = sorted(s["start_to_ready_s"] for s in starts)
    return {
        "image": image,
        "size_bytes": size,
        "size_mb": round(size / 1e6, 1),
        # Best of the runs: the start-up cost itself, least disturbed by other load on the machine.
        "start_to_ready_s": round(ready[0], 3),
        "start_to_ready_median_s": round(ready[len(ready) // 2], 3),
        "start_to_ready_all_s": [round(s["start_to_ready_s"], 3) for s in starts],
        "run_to_ready_s": round(min(s["run_to_ready_s"] for s in starts), 3),
        "goals": {"size_mb": 150, "start_to_ready_s": 0.5},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.container", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    meas = sub.add_parser("measure", help="print image size and start → /readyz 200 as JSON")
    meas.add_argument("--image", default=TEST_IMAGE)
    meas.add_argument("--build", action="store_true", help="build the image first (python -m image build)")
    meas.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args(argv)
    problem = engine_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if opts.build:
        built = build_image(opts.image)
        print(f"built {built.tag} ({built.id}) in {built.build_seconds:.1f} s", file=sys.stderr)
    print(json.dumps(measure(opts.image, opts.runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
