"""The base image: the real python:3.12-slim where a registry is reachable (FLASK_SVC_TEST_BASE_IMAGE), else a
stand-in with its interface made from Debian packages (debootstrap + docker import), cached as a local image."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from image.docker import docker, image_exists

REPO = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO / ".tools" / "container"

STANDIN_SUITE = "bookworm"
STANDIN_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
# Bump when the recipe below changes, so cached stand-ins are rebuilt.
STANDIN_RECIPE = "2"
STANDIN_REPO = "flask-svc-standin-base"
BASE_IMAGE_ENV = "FLASK_SVC_TEST_BASE_IMAGE"


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """Serialise work that several builds or test sessions on this machine might do at once (all share .tools/)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def apt_mirror(suite: str = STANDIN_SUITE) -> str:
    """The Debian mirror this host's apt uses for `suite` (deb822 .sources or one-line .list files)."""
    apt = Path("/etc/apt")
    candidates: list[tuple[str, list[str]]] = []
    for path in sorted(apt.glob("sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (line.partition(":") for line in stanza.splitlines() if not line.startswith("#"))
                if v
            )
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    candidates.append((uri, fields.get("suites", "").split()))
    for path in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*.list"))]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m:
                candidates.append((m.group(1), [m.group(2)]))
    for uri, suites in candidates:
        if suite in suites:
            return uri
    raise RuntimeError(f"no apt source for {suite!r} in /etc/apt; cannot debootstrap the stand-in base")


def configured_base() -> str | None:
    """The real base named by FLASK_SVC_TEST_BASE_IMAGE (e.g. python:3.12-slim where a registry is reachable, as
    in GitHub Actions), pulled when missing; unset here, where the debootstrap stand-in takes its place."""
    ref = os.environ.get(BASE_IMAGE_ENV, "").strip()
    if not ref:
        return None
    if not image_exists(ref):
        docker("pull", "--quiet", ref, timeout=600)
    return ref


def standin_tag() -> str:
    digest = hashlib.sha256(f"{STANDIN_RECIPE}:{STANDIN_SUITE}:{','.join(STANDIN_PACKAGES)}".encode()).hexdigest()
    return f"{STANDIN_REPO}:{STANDIN_SUITE}-{digest[:10]}"


def ensure_standin_base(log: Path | None = None) -> str:
    """A local image with python:3.12-slim's interface (python, pip, python -m venv, CA certificates)."""
    tag = standin_tag()
    if image_exists(tag):
        return tag
    with file_lock("standin"):
        if image_exists(tag):  # another session built it while we waited
            return tag
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is missing (run `make setup`)")
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="standin-", dir=CACHE_DIR))
        rootfs = work / "rootfs"
        log = log or CACHE_DIR / "debootstrap.log"
        try:
            with open(log, "w") as fh:
                subprocess.run(
                    [
                        "debootstrap",
                        "--variant=minbase",
                        f"--include={','.join(STANDIN_PACKAGES)}",
                        STANDIN_SUITE,
                        str(rootfs),
                        apt_mirror(),
                    ],
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=900,
                )
            _trim_rootfs(rootfs)
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
            try:
                docker(
                    "import",
                    "--change",
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "--change",
                    'CMD ["python3"]',
                    "--message",
                    f"stand-in for python:3.12-slim: debootstrap {STANDIN_SUITE} + {' '.join(STANDIN_PACKAGES)}",
                    "-",
                    tag,
                    stdin=tar.stdout,
                    timeout=600,
                )
            finally:
                assert tar.stdout is not None
                tar.stdout.close()
                if tar.wait() != 0:
                    raise RuntimeError("tar of the stand-in rootfs failed")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return tag


def _trim_rootfs(rootfs: Path) -> None:
    """Make the debootstrap tree look like python:*-slim: `python`/`pip` commands, pip usable, no apt caches."""
    for name, target in (("python", "/usr/bin/python3"), ("pip", "/usr/bin/pip3")):
        link = rootfs / "usr/local/bin" / name
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    # The official image's Python is not Debian-managed, so `pip install` outside a venv works there too.
    for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    for sub in ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info"):
        for child in (rootfs / sub).glob("*"):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    for child in (rootfs / "usr/share/locale").glob("*"):
        if child.is_dir():
            shutil.rmtree(child)
        elif child.name != "locale.alias":
            child.unlink()
