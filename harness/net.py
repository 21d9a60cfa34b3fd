"""Loopback ports and readiness polling."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

from service.names import READYZ

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS's pick)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def http_status(port: int, path: str = READYZ, timeout: float = 1.0, host: str = LOOPBACK) -> int | None:
    """The status of one GET on the loopback, or None while nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def wait_until_ready(
    port: int,
    path: str = READYZ,
    *,
    gone: Callable[[], str | None] = lambda: None,
    timeout: float = 30.0,
    interval: float = 0.05,
    host: str = LOOPBACK,
) -> None:
    """Poll ``path`` until it answers 200. ``gone`` says why the server can no longer get there (it exited), or
    None while it still may; both that and the timeout raise, naming the address."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_status(port, path, host=host) == 200:
            return
        reason = gone()
        if reason is not None:
            raise RuntimeError(f"{host} port {port} will not be ready: {reason}")
        time.sleep(interval)
    raise TimeoutError(f"{host} port {port}: {path} not 200 within {timeout} s")


def process_gone(process: subprocess.Popen[Any]) -> Callable[[], str | None]:
    """``gone`` for a process: its exit code once it has exited."""

    def check() -> str | None:
        code = process.poll()
        return None if code is None else f"the process exited with {code}"

    return check
