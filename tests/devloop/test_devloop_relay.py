"""TcpRelay, the loopback side of the e2e port-forward, with a plain TCP upstream."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer

import pytest
import requests

from tests.e2e.kube_support import TcpRelay


def _upstream(server: ThreadingHTTPServer):  # type: ignore[no-untyped-def]
    port = server.server_address[1]
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=5)


def test_http_through_the_relay(http_server: ThreadingHTTPServer) -> None:
    with TcpRelay(_upstream(http_server)) as relay:
        assert relay.url.startswith("http://127.0.0.1:")
        response = requests.get(f"{relay.url}/status/418", timeout=5)
        assert response.status_code == 418
        with requests.Session() as session:  # keep-alive: several requests on one relayed connection
            for _ in range(3):
                assert session.get(f"{relay.url}/", timeout=5).text == "ok"
    assert not relay.errors


def test_large_bodies_both_ways(http_server: ThreadingHTTPServer) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB, many relay buffers
    with TcpRelay(_upstream(http_server), bufsize=4096) as relay:
        response = requests.post(f"{relay.url}/echo", data=body, timeout=10)
    assert response.content == body


def test_concurrent_connections_each_get_their_own_upstream(http_server: ThreadingHTTPServer) -> None:
    opened = []
    lock = threading.Lock()
    connect = _upstream(http_server)

    def counting_connect() -> socket.socket:
        with lock:
            opened.append(1)
        return connect()

    with TcpRelay(counting_connect) as relay, ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda i: requests.post(f"{relay.url}/", data=str(i), timeout=5).text, range(32)))
    assert texts == [str(i) for i in range(32)]
    assert len(opened) == 32  # requests' module-level calls do not share connections


def test_failed_upstream_closes_the_client_and_is_reported() -> None:
    def refuse() -> socket.socket:
        raise ConnectionRefusedError("pod port closed")

    with TcpRelay(refuse) as relay:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{relay.url}/", timeout=5)
        assert relay.errors and "pod port closed" in relay.errors[0]


def test_stop_closes_the_listener_and_open_connections(http_server: ThreadingHTTPServer) -> None:
    relay = TcpRelay(_upstream(http_server)).start()
    idle = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200" in idle.recv(1024)
    relay.stop()
    idle.settimeout(5)
    while chunk := idle.recv(1024):  # the rest of the response, if any, then the relay's close
        assert chunk
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", relay.port), timeout=1)
