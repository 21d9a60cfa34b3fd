"""What the worker writes without Flask (``service.server.worker``): complete fixed-length responses, problem
documents for requests gunicorn cannot parse, the ``Date`` header formatted once a second, and the middleware that
closes a connection the app asked to close."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

from gunicorn import util

from service.problems import PROBLEM_JSON, problem_document


def response_bytes(status: int, reason: str, content_type: str, body: bytes, keep_alive: bool, head: bool) -> bytes:
    """A complete HTTP/1.1 response with a fixed-length body."""
    connection = "keep-alive" if keep_alive else "close"
    start = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: {connection}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    return start if head else start + body


def problem_bytes(status: int, reason: str, detail: str) -> bytes:
    body = json.dumps(problem_document(status, detail or reason)).encode()
    return response_bytes(status, reason, PROBLEM_JSON, body, keep_alive=False, head=False)


def write_problem(sock: Any, status: int, reason: str, detail: str) -> None:
    util.write_nonblock(sock, problem_bytes(status, reason, detail))


class SecondsDate:
    """gunicorn's ``util.http_date``, the ``Date`` header of every response, formatted once per second instead of
    once per response (``email.utils.formatdate`` is a datetime and a string format each time). The same text:
    a header's date has a resolution of one second."""

    def __init__(self) -> None:
        self.formatted: tuple[int, str] = (-1, "")  # one tuple, swapped whole: a thread reads a consistent pair

    def __call__(self, timestamp: float | None = None) -> str:
        second = int(time.time() if timestamp is None else timestamp)
        formatted = self.formatted
        if formatted[0] != second:
            formatted = self.formatted = (second, email.utils.formatdate(second, localtime=False, usegmt=True))
        return formatted[1]


def close_when_asked(app: Any) -> Any:
    """WSGI middleware: a response that says ``Connection: close`` closes the connection.

    gunicorn drops an application's Connection header (it is hop-by-hop) and keeps the connection alive by itself;
    then it must drain whatever body the application refused unread (a 413 on Content-Length: up to gigabytes),
    holding a thread. Its response object is what ``start_response`` is bound to; ``force_close`` makes it answer
    ``Connection: close`` and close after the response."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            for name, value in headers:
                if len(name) == 10 and name.lower() == "connection" and value.strip().lower() == "close":
                    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
                    if force_close is not None:
                        force_close()
                    break
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wsgi
