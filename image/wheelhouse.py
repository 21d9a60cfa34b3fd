"""The wheelhouse: the locked wheels for the base image's Python, downloaded on the host (which trusts its proxy),
and a loopback server that hands them to the build's pip."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from image.base import CACHE_DIR, REPO, file_lock
from image.docker import docker


def base_python(base_image: str) -> dict[str, str]:
    """Interpreter and platform facts of the base image, so the wheelhouse fits the container's Python."""
    script = (
        "import json, os, platform, sys; "
        "print(json.dumps({'major': sys.version_info[0], 'minor': sys.version_info[1], "
        "'machine': platform.machine(), 'glibc': os.confstr('CS_GNU_LIBC_VERSION') or ''}))"
    )
    out = docker("run", "--rm", "--network=none", base_image, "python", "-c", script, timeout=60).stdout
    return {k: str(v) for k, v in json.loads(out).items()}


def _platform_tags(machine: str, glibc: str) -> list[str]:
    # pip download --platform does not widen manylinux_2_X to older glibc levels; list them as pip would.
    m = re.search(r"(\d+)\.(\d+)", glibc)
    major, minor = (int(m.group(1)), int(m.group(2))) if m else (2, 17)
    tags = [f"manylinux_{major}_{n}_{machine}" for n in range(minor, 4, -1)]
    legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
    tags += [f"{name}_{machine}" for name, level in legacy.items() if major == 2 and minor >= level]
    return [*tags, f"linux_{machine}"]


def ensure_wheelhouse(base_image: str) -> Path:
    """The locked wheels for the base image's Python, downloaded on the host (which trusts its proxy): both
    variants', the default image's lock and the `-ml` image's."""
    locks = [REPO / "requirements.lock", REPO / "requirements-ml.lock"]
    py = base_python(base_image)
    content = b"".join(lock.read_bytes() for lock in locks)
    key = hashlib.sha256(content + json.dumps(py, sort_keys=True).encode()).hexdigest()[:12]
    dest = CACHE_DIR / f"wheelhouse-cp{py['major']}{py['minor']}-{py['machine']}-{key}"
    if dest.is_dir():
        return dest
    with file_lock("wheelhouse"):
        if dest.is_dir():
            return dest
        tmp = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=CACHE_DIR))
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            f"--python-version={py['major']}.{py['minor']}",
            "--implementation=cp",
            f"--abi=cp{py['major']}{py['minor']}",
            *(f"--platform={tag}" for tag in _platform_tags(py["machine"], py["glibc"])),
            *(arg for lock in locks for arg in ("-r", str(lock))),
            "-d",
            str(tmp),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"pip download for the wheelhouse failed:\n{proc.stderr[-3000:]}")
        # Also lay the wheels out as a PEP 503 simple index (simple/<project>/), for the PIP_INDEX_URL path;
        # http.server's directory listings are pages pip can read.
        for wheel in tmp.glob("*.whl"):
            project = re.sub(r"[-_.]+", "-", wheel.name.split("-", 1)[0]).lower()
            (tmp / "simple" / project).mkdir(parents=True, exist_ok=True)
            os.link(wheel, tmp / "simple" / project / wheel.name)
        tmp.rename(dest)
    return dest


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def stable_port(directory: Path) -> int:
    """A loopback port derived from the wheelhouse's (content-keyed) name: a URL that only changes with the wheels,
    so a build that passes it as a build arg keeps its dependency layer cached."""
    return 20000 + int(hashlib.sha256(directory.name.encode()).hexdigest(), 16) % 20000


@contextlib.contextmanager
def serve_directory(directory: Path, port: int = 0) -> Iterator[str]:
    """Serve `directory` read-only on 127.0.0.1 (a pip find-links page); yields its URL. ``port`` is tried first; when
    it is taken (another build serving the same wheelhouse), any free port."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="wheelhouse", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
