"""Container helpers shared by tests/container and the benchmark.

No image registry is reachable from the project's machines, so the image is built on a stand-in for
python:3.12-slim made from Debian packages (debootstrap + docker import, cached as a local image), with the
locked wheels served on loopback and handed to the build as a BuildKit secret pip.conf.

For the benchmark (prints JSON: image size, container start -> /readyz 200):

    .venv/bin/python -m tests.container.containerlib measure [--build] [--image flask-svc:test] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.docker import DOCKER, HARDENED_RUN, docker
from harness.net import free_port, wait_until_ready

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / ".tools" / "container"
TEST_TAG = "flask-svc:test"
ML_TEST_TAG = "flask-svc:test-ml"

STANDIN_SUITE = "bookworm"
STANDIN_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
# Bump when the recipe below changes, so cached stand-ins are rebuilt.
STANDIN_RECIPE = "2"
STANDIN_REPO = "flask-svc-standin-base"


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


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """Serialise work that several test sessions on this machine might do at once (all share .tools/)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------------------------
# The stand-in base image


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


BASE_IMAGE_ENV = "FLASK_SVC_TEST_BASE_IMAGE"


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


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False, timeout=30).returncode == 0


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


# ---------------------------------------------------------------------------------------------------------------
# The wheelhouse


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


# ---------------------------------------------------------------------------------------------------------------
# Building


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
    tag: str = TEST_TAG,
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


# ---------------------------------------------------------------------------------------------------------------
# Running and measuring


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
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


def image_size(image: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


def _parse_docker_time(value: str) -> float:
    # Docker prints nanoseconds; datetime takes microseconds.
    value = re.sub(r"(\.\d{6})\d*", r"\1", value.strip()).replace("Z", "+00:00")
    return dt.datetime.fromisoformat(value).timestamp()


def measure_start(image: str) -> dict[str, float]:
    """One cold start: `docker run` → /readyz 200, and the container's own start → /readyz 200."""
    t0 = time.time()
    container = run_container(image)
    try:
        ready = wait_ready(container)
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the image on the stand-in base (cached)")
    build.add_argument("--image", default=TEST_TAG)
    build.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="a Dockerfile ARG")
    build.add_argument("--target", help="a Dockerfile stage, e.g. ml for the model-serving variant")
    meas = sub.add_parser("measure", help="print image size and start → /readyz 200 as JSON")
    meas.add_argument("--image", default=TEST_TAG)
    meas.add_argument("--build", action="store_true", help="build the image first")
    meas.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args(argv)
    problem = engine_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if opts.command == "build" or opts.build:
        extra = dict(arg.split("=", 1) for arg in getattr(opts, "build_arg", []))
        built = build_image(opts.image, build_args=extra, target=getattr(opts, "target", None))
        print(f"built {built.tag} ({built.id}) in {built.build_seconds:.1f} s", file=sys.stderr)
    if opts.command == "measure":
        print(json.dumps(measure(opts.image, opts.runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
