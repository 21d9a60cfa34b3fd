"""gunicorn's gthread worker, with its own error answers in the service's format.

gunicorn answers requests it cannot parse (a bad request line, oversized headers, broken chunked encoding) itself,
before the application sees them, with an HTML page. This worker sends the same status as an RFC 9457 problem
document instead, so clients meet one error format whatever rejected them.
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from service.problems import PROBLEM_JSON, problem_document


def write_problem(sock: Any, status: int, reason: str, detail: str) -> None:
    body = json.dumps(problem_document(status, detail or reason)).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: {PROBLEM_JSON}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


class ProblemThreadWorker(ThreadWorker):  # type: ignore[misc]
    def init_process(self) -> None:
        # gunicorn writes its error pages through util.write_error; this process answers them as problem+json.
        util.write_error = write_problem
        super().init_process()
