"""The Docker client as tests and benchmarks run it, and the hardening every container of the image gets."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import IO

# Debian's client has BuildKit built in; another `docker` first on PATH may lack it.
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")

# The same hardening the chart applies; --network host because no bridge network exists on these machines.
HARDENED_RUN = (
    "--network=host",
    "--read-only",
    "--tmpfs=/tmp",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
)


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
