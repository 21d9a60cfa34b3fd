"""The Docker client as the image build, the tests and the benchmarks run it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import IO

# Debian's client has BuildKit built in; another `docker` first on PATH may lack it.
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


def docker(
    *args: str, check: bool = True, timeout: float = 120, stdin: IO[bytes] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the docker client, capturing text output; on failure the error names the command and its stderr."""
    proc = subprocess.run(
        [DOCKER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        check=False,
        stdin=stdin,
    )
    if check and proc.returncode != 0:
        output = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        raise RuntimeError(f"docker {' '.join(args[:3])} … exited {proc.returncode}:\n{output}")
    return proc


def engine_problem() -> str | None:
    """None when a Docker engine answers, else why not (the tests skip with it; `make setup` fixes it)."""
    if not Path(DOCKER).exists() and shutil.which(DOCKER) is None:
        return "no docker client (run `make setup`, which installs docker.io)"
    try:
        proc = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20)
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if proc.returncode != 0:
        return f"no Docker engine answers (run `make setup`, which starts dockerd): {proc.stderr.strip()[:300]}"
    return None


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False, timeout=30).returncode == 0


def image_size(image: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())
