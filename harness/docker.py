"""The hardening every container of the image gets when tests and benchmarks run it (the client is the image
build's, re-exported here)."""

from __future__ import annotations

from image.docker import DOCKER, docker

__all__ = ["DOCKER", "HARDENED_RUN", "docker"]

# The same hardening the chart applies; --network host because no bridge network exists on these machines.
HARDENED_RUN = (
    "--network=host",
    "--read-only",
    "--tmpfs=/tmp",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
)
