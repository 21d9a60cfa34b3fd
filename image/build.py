"""`docker build` of the repository's Dockerfile on the base image, pip fed from the loopback wheelhouse."""

from __future__ import annotations

import datetime as dt
import os
import ssl
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from image.base import REPO, configured_base, ensure_standin_base
from image.docker import docker
from image.wheelhouse import ensure_wheelhouse, serve_directory, stable_port


@dataclass
class BuiltImage:
    id: str
    tag: str
    base: str
    build_args: dict[str, str]
    # What the build was told about pip (URLs, secret contents' markers): none of it may reach the image.
    leak_markers: list[str] = field(default_factory=list)
    build_seconds: float = 0.0


def host_ca_bundle() -> Path | None:
    """The CA bundle the host trusts (pip's own setting first), for the build's pip_ca secret."""
    for candidate in (os.environ.get("PIP_CERT"), ssl.get_default_verify_paths().cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def git_revision() -> str:
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "0000000000000000000000000000000000000000"


def build_image(
    tag: str,
    *,
    base_image: str | None = None,
    build_args: dict[str, str] | None = None,
    pip_via: str = "secret",
    target: str | None = None,
    timeout: float = 900,
) -> BuiltImage:
    """Build the repository's Dockerfile with BuildKit on the stand-in base, pip fed from a loopback wheelhouse.

    pip_via="secret": a pip.conf (find-links to the wheelhouse) and a CA bundle as BuildKit secrets; they do not
    enter the cache key, so the dependency layer stays cached from run to run.
    pip_via="build-arg": PIP_INDEX_URL/PIP_TRUSTED_HOST build args, served on a port keyed by the wheelhouse's content
    so the URL, and with it the dependency layer's cache key, stays the same from run to run.
    """
    base = base_image or configured_base() or ensure_standin_base()
    wheelhouse = ensure_wheelhouse(base)
    # Each build leaves the previous test image untagged; drop old ones (never a concurrent session's).
    docker(
        "image",
        "prune",
        "--force",
        "--filter",
        "label=org.opencontainers.image.title=flask-svc",
        "--filter",
        "until=1h",
        check=False,
        timeout=120,
    )
    args = {
        "VERSION": "0.0.0+container-test",
        "REVISION": git_revision(),
        "CREATED": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "SOURCE": "https://example.invalid/flask-svc",
        **(build_args or {}),
        "BASE_IMAGE": base,
    }
    port = stable_port(wheelhouse) if pip_via == "build-arg" else 0
    with serve_directory(wheelhouse, port) as url, tempfile.TemporaryDirectory(prefix="flask-svc-build-") as tmp:
        host = url.split("/")[2]
        iidfile = Path(tmp, "iid")
        cmd = ["build", "--network=host", "--progress=plain", f"--iidfile={iidfile}", "-t", tag]
        cmd += ["--target", target] if target else []
        if pip_via == "secret":
            marker = f"flask-svc-build-secret-{uuid.uuid4().hex}"
            pip_conf = Path(tmp, "pip.conf")
            pip_conf.write_text(
                f"# {marker}\n[global]\nno-index = true\nfind-links = {url}\ntrusted-host = {host}\n",
                encoding="utf-8",
            )
            # The CA is not needed for a plain-HTTP wheelhouse; it is passed anyway to prove it leaves no trace.
            pip_ca = Path(tmp, "ca.pem")
            ca = host_ca_bundle()
            pip_ca.write_text(f"# {marker}\n" + (ca.read_text() if ca else ""), encoding="utf-8")
            cmd += ["--secret", f"id=pip_conf,src={pip_conf}", "--secret", f"id=pip_ca,src={pip_ca}"]
            markers = [marker, url]
        elif pip_via == "build-arg":
            args |= {"PIP_INDEX_URL": f"{url}simple/", "PIP_TRUSTED_HOST": host}
            markers = [url]
        else:
            raise ValueError(f"pip_via must be 'secret' or 'build-arg', not {pip_via!r}")
        for k, v in args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        started = time.monotonic()
        docker(*cmd, str(REPO), timeout=timeout)
        elapsed = time.monotonic() - started
        image_id = iidfile.read_text().strip()
    return BuiltImage(id=image_id, tag=tag, base=base, build_args=args, leak_markers=markers, build_seconds=elapsed)
